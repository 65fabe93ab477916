// What may enter one queue: the producer rate limit (token buckets) and room under maxLength and
// maxBytes, made by the overflow policy ('reject', 'block', 'drop-oldest', 'drop-lowest-priority')
// and reserved until the publish that took it is stored. Apart from queue-publish.ts, which keeps
// validation, dedup and the appends: the policies and their reservations are one piece of state
// with rules of their own (a check and its reservation in one synchronous step). One gate per
// queue, asked once per publish (per message only under overflow 'dead-letter', which decides
// message by message).
import { WharfError, assert, type Clock } from '../../common/index.js';
import type { LogRecord, PartitionLog } from '../../storage/index.js';
import type { ResolvedQueueOptions } from './queue-config.js';
import { DELAY_LEVEL, type QueueState } from './queue-state.js';
import { recordBytes } from './queue-record.js';
import type { RateWindow } from './rate-window.js';
import { RateBucket } from './token-bucket.js';

/** What the gate needs of its queue (QueueEngine). */
export interface OverflowHost {
  readonly name: string;
  readonly options: ResolvedQueueOptions;
  readonly state: QueueState;
  readonly clock: Clock;
  /** Unsettled bytes in all logs; drops count theirs off. */
  bytes: number;
  readonly counters: { dropped: number };
  readonly rates: { readonly ack: RateWindow };
  /** Publishers blocked by overflow 'block', woken when messages settle. */
  readonly roomWaiters: Set<() => void>;
  readonly journal: { commit(): Promise<void> };
  assertOpen(): void;
  locked<T>(fn: () => Promise<T>): Promise<T>;
  log(level: number): PartitionLog;
  readOne(level: number, offset: number): Promise<LogRecord | null>;
}

export type RoomOutcome = 'ok' | 'drop-incoming';

/** A ready message chosen to make room (drop-oldest, drop-lowest-priority), not dropped yet. */
interface DropVictim {
  level: number;
  offset: number;
  held: boolean;
  sizeBytes: number;
}

export class OverflowGate {
  private readonly messageBucket: RateBucket | null;
  private readonly byteBucket: RateBucket | null;
  /** Messages and bytes admitted but not yet durable, counted against maxLength/maxBytes. */
  private reservedCount = 0;
  private reservedBytes = 0;

  constructor(private readonly q: OverflowHost) {
    const o = q.options;
    const now = q.clock.now();
    const rl = o.rateLimit;
    this.messageBucket = rl?.messagesPerSecond
      ? new RateBucket({ ratePerSecond: rl.messagesPerSecond, burst: rl.burstMessages ?? rl.messagesPerSecond }, now)
      : null;
    this.byteBucket = rl?.bytesPerSecond
      ? new RateBucket({ ratePerSecond: rl.bytesPerSecond, burst: rl.burstBytes ?? rl.bytesPerSecond }, now)
      : null;
  }

  /** Producer token bucket: waits (mode 'delay') or fails with RATE_LIMITED (mode 'reject'). */
  async admitRate(count: number, bytes: number): Promise<void> {
    if (this.messageBucket === null && this.byteBucket === null) return;
    const q = this.q;
    for (;;) {
      const now = q.clock.now();
      const waitMs = Math.max(this.messageBucket?.waitMs(count, now) ?? 0, this.byteBucket?.waitMs(bytes, now) ?? 0);
      if (waitMs === 0) break;
      if (q.options.rateLimit?.mode === 'reject') {
        throw new WharfError(
          'RATE_LIMITED',
          `queue ${JSON.stringify(q.name)} is over its producer rate limit; retry after ${waitMs} ms or publish more slowly`,
          { retryAfterMs: waitMs },
        );
      }
      await new Promise<void>((resolve) => q.clock.setTimer(waitMs, resolve));
      q.assertOpen();
    }
    const now = q.clock.now();
    this.messageBucket?.take(count, now);
    this.byteBucket?.take(bytes, now);
  }

  /** Whether a publish would be over maxLength or maxBytes even in an empty queue. */
  private overLimitsAlone(count: number, bytes: number): boolean {
    const o = this.q.options;
    return (o.maxLength !== undefined && count > o.maxLength) || (o.maxBytes !== undefined && bytes > o.maxBytes);
  }

  isOver(count: number, bytes: number): boolean {
    const q = this.q;
    const o = q.options;
    const total = q.state.messageCount() + q.state.unsettledIn(DELAY_LEVEL) + this.reservedCount;
    return (
      (o.maxLength !== undefined && total + count > o.maxLength) ||
      (o.maxBytes !== undefined && q.bytes + this.reservedBytes + bytes > o.maxBytes)
    );
  }

  full(extra = '', cause?: unknown): WharfError {
    const q = this.q;
    const ackRate = q.rates.ack.perSecond(q.clock.now());
    const retryAfterMs = ackRate > 0 ? Math.min(60_000, Math.ceil(1000 / ackRate)) : 1000;
    return new WharfError(
      'QUEUE_FULL',
      `queue ${JSON.stringify(q.name)} is full (maxLength ${q.options.maxLength ?? '-'}, maxBytes ${q.options.maxBytes ?? '-'}, overflow '${q.options.overflow}')${extra}; retry later, consume faster, or raise the limits`,
      { retryAfterMs, cause },
    );
  }

  /**
   * Applies the overflow policy (all but 'dead-letter': storeOrDeadLetter, queue-publish.ts) until
   * the batch fits; reserves its room.
   */
  async makeRoom(count: number, bytes: number, incomingLevel: number): Promise<RoomOutcome> {
    const q = this.q;
    if (this.isOver(count, bytes)) {
      // store() sends an over-full publish to storeOrDeadLetter in the same step as this check.
      assert(q.options.overflow !== 'dead-letter', "overflow 'dead-letter' never reaches makeRoom over the limits");
      switch (q.options.overflow) {
        case 'reject':
          throw this.full();
        case 'block':
          // A batch over the limits on its own would wait out blockTimeoutMs for room it can never
          // have: refused now (a remote client then re-sends merged single publishes one by one).
          if (this.overLimitsAlone(count, bytes)) throw this.full(': the publish alone is over the limits');
          await this.waitForRoom(count, bytes);
          return 'ok';
        case 'drop-oldest':
        case 'drop-lowest-priority':
          return q.locked(() => this.dropUntilFits(count, bytes, incomingLevel));
      }
    }
    this.reserve(count, bytes);
    return 'ok';
  }

  /** Called in the same synchronous step as the check that found room, so two publishers cannot both take it. */
  reserve(count: number, bytes: number): void {
    this.reservedCount += count;
    this.reservedBytes += bytes;
  }

  unreserve(count: number, bytes: number): void {
    this.reservedCount -= count;
    this.reservedBytes -= bytes;
    assert(this.reservedCount >= 0 && this.reservedBytes >= 0, 'a reservation is given back once');
  }

  private async waitForRoom(count: number, bytes: number): Promise<void> {
    const q = this.q;
    const deadline = q.clock.now() + q.options.blockTimeoutMs;
    for (;;) {
      q.assertOpen();
      if (!this.isOver(count, bytes)) return this.reserve(count, bytes);
      const left = deadline - q.clock.now();
      if (left <= 0) throw this.full(`: no room within blockTimeoutMs ${q.options.blockTimeoutMs}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          q.roomWaiters.delete(done);
          timer.cancel();
          resolve();
        };
        const timer = q.clock.setTimer(left, done);
        q.roomWaiters.add(done);
      });
    }
  }

  /**
   * drop-oldest: the oldest ready messages of the highest level first (RabbitMQ drop-head);
   * drop-lowest-priority: the lowest level's first. Victims are chosen before any is dropped, so a
   * publish that would not fit even with every droppable message gone fails with nothing dropped.
   */
  private async dropUntilFits(count: number, bytes: number, incomingLevel: number): Promise<RoomOutcome> {
    const q = this.q;
    const o = q.options;
    if (this.overLimitsAlone(count, bytes)) throw this.full(': the publish alone is over the limits');
    const levels = q.state.levels.map((_, i) => i);
    if (o.overflow === 'drop-oldest') levels.reverse();
    const chosen = levels.map(() => new Set<number>());
    const victims: DropVictim[] = [];
    let freedCount = 0;
    let freedBytes = 0;
    while (this.isOver(count - freedCount, bytes - freedBytes)) {
      let victim: DropVictim | undefined;
      for (const level of levels) {
        if (
          o.overflow === 'drop-lowest-priority' &&
          level > incomingLevel &&
          q.state.unsettledIn(level) - chosen[level].size > 0
        )
          return 'drop-incoming';
        victim = await this.oldestReady(level, chosen[level]);
        if (victim !== undefined) break;
      }
      if (victim === undefined) throw this.full(': every stored message is in flight or delayed');
      chosen[victim.level].add(victim.offset);
      victims.push(victim);
      freedCount++;
      freedBytes += victim.sizeBytes;
    }
    // Under the queue's lock since the choice: nothing has taken, settled or moved a victim since.
    for (const v of victims) {
      if (v.held) q.state.unhold(v.offset);
      q.state.settle(v.level, v.offset); // a tracked message is forgotten with it
      q.bytes -= v.sizeBytes;
      q.counters.dropped++;
    }
    // Reserved in the same step as the settles: while the drops are committed, the room they freed
    // is this publish's, not a concurrent one's (which would find it free and take it too).
    this.reserve(count, bytes);
    if (victims.length > 0) {
      try {
        await q.journal.commit();
      } catch (err) {
        this.unreserve(count, bytes);
        throw err;
      }
    }
    return 'ok';
  }

  /**
   * The level's oldest ready message not in `chosen`: one visible again after a nack or an expired
   * lease, one held behind its FIFO group, or the first never delivered from the cursor on,
   * whichever has the lowest offset. Messages in flight, waiting for a retry or being dead-lettered
   * are never dropped.
   */
  private async oldestReady(level: number, chosen: ReadonlySet<number>): Promise<DropVictim | undefined> {
    const q = this.q;
    let oldest: number | undefined;
    for (const key of q.state.visible[level]) {
      const t = q.state.tracked.get(key);
      if (t === undefined || t.state !== 'visible' || chosen.has(t.offset)) continue;
      if (oldest === undefined || t.offset < oldest) oldest = t.offset;
    }
    const held = level === 0 ? q.state.oldestHeld(chosen) : undefined;
    if (held !== undefined && (oldest === undefined || held < oldest)) oldest = held;
    // Everything from the cursor on is newer than the cursor: the log is read only when nothing
    // older is ready.
    const fromCursor =
      oldest !== undefined && oldest < q.state.nextCursorOffset(level)
        ? undefined
        : await this.firstFromCursor(level, chosen);
    if (fromCursor !== undefined && (oldest === undefined || fromCursor.offset < oldest)) oldest = fromCursor.offset;
    if (oldest === undefined) return undefined;
    const rec = oldest === fromCursor?.offset ? fromCursor : await q.readOne(level, oldest);
    return { level, offset: oldest, held: held === oldest, sizeBytes: rec === null ? 0 : recordBytes(rec) };
  }

  /** The first never-delivered message of the level from its cursor on, not in `chosen`, if any. */
  private async firstFromCursor(level: number, chosen: ReadonlySet<number>): Promise<LogRecord | undefined> {
    const q = this.q;
    const l = q.state.levels[level];
    let at = q.state.nextCursorOffset(level);
    while (at < l.endOffset) {
      const recs = await q.log(level).read(at, { maxBytes: 64 * 1024, maxRecords: 64 });
      if (recs.length === 0) return undefined;
      for (const rec of recs) {
        if (rec.offset >= l.endOffset) return undefined;
        if (q.state.isCandidate(level, rec.offset) && !chosen.has(rec.offset)) return rec;
      }
      at = recs[recs.length - 1].offset + 1;
    }
    return undefined;
  }
}
