// The publish path of one queue: validation, dedup, producer rate limit, overflow (backpressure),
// then one append per priority level (or to the delay log), resolving once durable.
import { LIMITS, WharfError } from '../../common/index.js';
import type { LogRecord, RecordInput } from '../../storage/index.js';
import { RECOVERY_WINDOW_MS, type ProducerDedupe } from '../idempotence.js';
import { H_DEDUP_ID, H_ID, encodeMessage } from '../message-codec.js';
import { headerOf, scanLogSince } from '../topics/dedup-index.js';
import type { MessageInput, PublishResult } from '../types.js';
import { DedupWindow, contentDedupKey } from './dedup-window.js';
import type { QueueEngine } from './queue.js';
import { highestLevelFirst } from './queue-handoff.js';
import { DELAY_LEVEL } from './queue-state.js';
import { deadLetterRecord, recordBytes, withDueHeader } from './queue-record.js';
import { RateBucket } from './token-bucket.js';

interface Pending {
  index: number;
  id: string;
  record: RecordInput;
  sizeBytes: number;
  dedupKey: string | undefined;
  level: number;
  delayMs: number;
}

type RoomOutcome = 'ok' | 'dead-letter' | 'drop-incoming';

export class QueuePublisher {
  private readonly dedup: DedupWindow;
  private readonly messageBucket: RateBucket | null;
  private readonly byteBucket: RateBucket | null;
  /** Messages and bytes admitted but not yet durable, counted against maxLength/maxBytes. */
  private reservedCount = 0;
  private reservedBytes = 0;

  constructor(
    private readonly q: QueueEngine,
    /** Idempotent producers' table: learns every write here, and this queue's recent records on open. */
    private readonly producers: ProducerDedupe,
  ) {
    const o = q.options;
    this.dedup = new DedupWindow(o.dedupWindowMs);
    const now = q.clock.now();
    const rl = o.rateLimit;
    this.messageBucket = rl?.messagesPerSecond
      ? new RateBucket({ ratePerSecond: rl.messagesPerSecond, burst: rl.burstMessages ?? rl.messagesPerSecond }, now)
      : null;
    this.byteBucket = rl?.bytesPerSecond
      ? new RateBucket({ ratePerSecond: rl.bytesPerSecond, burst: rl.burstBytes ?? rl.bytesPerSecond }, now)
      : null;
  }

  async publish(inputs: MessageInput[]): Promise<PublishResult[]> {
    const q = this.q;
    q.assertOpen();
    if (inputs.length > LIMITS.maxBatchMessages) {
      throw new WharfError(
        'LIMIT_EXCEEDED',
        `publish of ${inputs.length} messages exceeds maxBatchMessages ${LIMITS.maxBatchMessages}; split the batch`,
      );
    }
    const now = q.clock.now();
    const results: PublishResult[] = new Array(inputs.length);
    // Every message is encoded and checked before the dedup window learns any key: a batch refused
    // as invalid must leave its dedupIds unseen, or a corrected retry would be taken for a duplicate.
    const encoded: Pending[] = new Array(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i];
      const enc = encodeMessage(input, now, q.options.maxMessageBytes, inputs.length === 1 ? 'message' : i);
      const delayMs = input.delayMs ?? q.options.delayMs ?? 0;
      if (delayMs > LIMITS.maxDelayMs)
        throw new WharfError(
          'INVALID_ARGUMENT',
          `messages[${i}].delayMs ${delayMs} exceeds maxDelayMs ${LIMITS.maxDelayMs}`,
        );
      const dedupKey =
        input.dedupId !== undefined
          ? 'id:' + input.dedupId
          : q.options.contentBasedDedup
            ? contentDedupKey(enc.record)
            : undefined;
      encoded[i] = {
        index: i,
        id: enc.id,
        record: enc.record,
        sizeBytes: recordBytes(enc.record),
        level: q.levelFor(enc.record),
        delayMs,
        dedupKey,
      };
    }
    const fresh: Pending[] = [];
    for (const p of encoded) {
      if (p.dedupKey !== undefined && q.options.dedupWindowMs > 0) {
        const original = this.dedup.lookup(p.dedupKey, now);
        if (original !== undefined) {
          results[p.index] = { id: original, duplicate: true };
          continue;
        }
        // Remembered now, so a concurrent repeat is recognised before this publish is durable.
        this.dedup.remember(p.dedupKey, p.id, now);
      }
      fresh.push(p);
    }
    if (fresh.length === 0) return results;
    try {
      await this.store(fresh);
    } catch (err) {
      for (const p of fresh) if (p.dedupKey !== undefined) this.dedup.forget(p.dedupKey, p.id);
      throw err;
    }
    q.rates.publish.add(fresh.length, q.clock.now());
    q.notify();
    for (const p of fresh) results[p.index] = { id: p.id };
    this.producers.learn(q.name, inputs, results);
    return results;
  }

  private async store(fresh: Pending[]): Promise<void> {
    const q = this.q;
    const bytes = fresh.reduce((n, p) => n + p.sizeBytes, 0);
    await this.admitRate(fresh.length, bytes);
    const outcome = await this.makeRoom(fresh.length, bytes, Math.max(...fresh.map((p) => p.level)));
    try {
      if (outcome === 'dead-letter') {
        const facts = q.facts('overflow', undefined);
        await q.host.appendTo(
          q.options.deadLetterQueue!,
          fresh.map((p) => deadLetterRecord({ ...p.record, offset: -1 }, facts)),
        );
        q.counters.deadLettered += fresh.length;
      } else if (outcome === 'drop-incoming') {
        q.counters.dropped += fresh.length;
      } else {
        await this.append(fresh);
      }
    } finally {
      this.reservedCount -= outcome === 'ok' ? fresh.length : 0;
      this.reservedBytes -= outcome === 'ok' ? bytes : 0;
    }
  }

  // Rebuilds, on open, the dedup window from the records of the last dedupWindowMs (every level and
  // the delay log), so a repeat after a restart is still recognised — exactly-once roll-forward of
  // exchange intents and transactions depends on it — and, in the same read, the idempotent
  // producers' (producerId, sequence) of the last RECOVERY_WINDOW_MS (../idempotence.ts).
  // The logs are read one after another, so their records come out of time order; the window
  // learns them sorted by timestamp, as it would have while running (a later record of a key wins).
  async rebuildDedup(): Promise<void> {
    const q = this.q;
    const windowMs = q.options.dedupWindowMs;
    const now = q.clock.now();
    const logs = [...q.store.logs, q.store.delayLog];
    const seen: { key: string; id: string; timestampMs: number }[] = [];
    for (const log of logs) {
      await scanLogSince(log, now - Math.max(windowMs, RECOVERY_WINDOW_MS), (rec) => {
        if (rec.timestampMs >= now - RECOVERY_WINDOW_MS) this.producers.rememberRecord(q.name, rec);
        if (windowMs <= 0 || rec.timestampMs < now - windowMs) return;
        const dedupId = headerOf(rec, H_DEDUP_ID);
        const key =
          dedupId !== undefined ? 'id:' + dedupId : q.options.contentBasedDedup ? contentDedupKey(rec) : undefined;
        if (key !== undefined) seen.push({ key, id: headerOf(rec, H_ID) ?? '', timestampMs: rec.timestampMs });
      });
    }
    seen.sort((a, b) => a.timestampMs - b.timestampMs); // stable: one log's order is kept within a millisecond
    for (const s of seen) this.dedup.remember(s.key, s.id, s.timestampMs);
  }

  // exchanges helper: the admission check of atomic routing and transactions — throws what publish
  // would throw for these messages (invalid, too large, QUEUE_FULL under overflow 'reject'), writes nothing.
  admit(inputs: MessageInput[]): void {
    const q = this.q;
    q.assertOpen();
    const now = q.clock.now();
    let bytes = 0;
    inputs.forEach((input, i) => {
      const enc = encodeMessage(input, now, q.options.maxMessageBytes, i);
      const delayMs = input.delayMs ?? q.options.delayMs ?? 0;
      if (delayMs > LIMITS.maxDelayMs)
        throw new WharfError(
          'INVALID_ARGUMENT',
          `messages[${i}].delayMs ${delayMs} exceeds maxDelayMs ${LIMITS.maxDelayMs}`,
        );
      bytes += recordBytes(enc.record);
    });
    if (q.options.overflow === 'reject' && this.isOver(inputs.length, bytes)) throw this.full();
  }

  private async append(fresh: Pending[]): Promise<void> {
    const q = this.q;
    const groups = new Map<number, Pending[]>();
    for (const p of fresh) {
      const level = p.delayMs > 0 ? DELAY_LEVEL : p.level;
      if (!groups.has(level)) groups.set(level, []);
      groups.get(level)!.push(p);
    }
    const now = q.clock.now();
    await Promise.all(
      highestLevelFirst(groups).map(async ([level, ps]) => {
        const records =
          level === DELAY_LEVEL ? ps.map((p) => withDueHeader(p.record, now + p.delayMs)) : ps.map((p) => p.record);
        const base = await q.appendLevel(
          level,
          records,
          ps.reduce((n, p) => n + p.sizeBytes, 0),
        );
        if (level === DELAY_LEVEL) {
          ps.forEach((p, i) => q.delayed.offer(now + p.delayMs, base + i));
          q.delayed.arm();
        }
      }),
    );
  }

  /** Producer token bucket: waits (mode 'delay') or fails with RATE_LIMITED (mode 'reject'). */
  private async admitRate(count: number, bytes: number): Promise<void> {
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

  private isOver(count: number, bytes: number): boolean {
    const q = this.q;
    const o = q.options;
    const total = q.state.messageCount() + q.state.unsettledIn(DELAY_LEVEL) + this.reservedCount;
    return (
      (o.maxLength !== undefined && total + count > o.maxLength) ||
      (o.maxBytes !== undefined && q.bytes + this.reservedBytes + bytes > o.maxBytes)
    );
  }

  private full(extra = ''): WharfError {
    const q = this.q;
    const ackRate = q.rates.ack.perSecond(q.clock.now());
    const retryAfterMs = ackRate > 0 ? Math.min(60_000, Math.ceil(1000 / ackRate)) : 1000;
    return new WharfError(
      'QUEUE_FULL',
      `queue ${JSON.stringify(q.name)} is full (maxLength ${q.options.maxLength ?? '-'}, maxBytes ${q.options.maxBytes ?? '-'}, overflow '${q.options.overflow}')${extra}; retry later, consume faster, or raise the limits`,
      { retryAfterMs },
    );
  }

  /** Applies the overflow policy until the batch fits; reserves its room. */
  private async makeRoom(count: number, bytes: number, incomingLevel: number): Promise<RoomOutcome> {
    const q = this.q;
    if (this.isOver(count, bytes)) {
      switch (q.options.overflow) {
        case 'reject':
          throw this.full();
        case 'dead-letter':
          return 'dead-letter';
        case 'block':
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
  private reserve(count: number, bytes: number): void {
    this.reservedCount += count;
    this.reservedBytes += bytes;
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

  /** drop-oldest: the oldest ready message of the highest level (RabbitMQ drop-head); drop-lowest-priority: the lowest level's. */
  private async dropUntilFits(count: number, bytes: number, incomingLevel: number): Promise<RoomOutcome> {
    const q = this.q;
    const levels = q.state.levels.map((_, i) => i);
    if (q.options.overflow === 'drop-oldest') levels.reverse();
    while (this.isOver(count, bytes)) {
      let dropped = false;
      for (const level of levels) {
        if (q.options.overflow === 'drop-lowest-priority' && level > incomingLevel && q.state.unsettledIn(level) > 0)
          return 'drop-incoming';
        if (await this.dropHead(level)) {
          dropped = true;
          break;
        }
      }
      if (!dropped) throw this.full(': every stored message is in flight or delayed');
    }
    this.reserve(count, bytes);
    return 'ok';
  }

  /**
   * Drops the level's oldest ready message: one visible again after a nack or an expired lease, one
   * held behind its FIFO group, or the first never delivered from the cursor on, whichever has the
   * lowest offset. Messages in flight, waiting for a retry or being dead-lettered are never dropped.
   */
  private async dropHead(level: number): Promise<boolean> {
    const q = this.q;
    let oldest: number | undefined;
    for (const key of q.state.visible[level]) {
      const t = q.state.tracked.get(key);
      if (t !== undefined && t.state === 'visible' && (oldest === undefined || t.offset < oldest)) oldest = t.offset;
    }
    const held = level === 0 ? q.state.oldestHeld() : undefined;
    if (held !== undefined && (oldest === undefined || held < oldest)) oldest = held;
    // Everything from the cursor on is newer than the cursor: the log is read only when nothing
    // older is ready.
    const fromCursor =
      oldest !== undefined && oldest < q.state.nextCursorOffset(level) ? undefined : await this.firstFromCursor(level);
    if (fromCursor !== undefined && (oldest === undefined || fromCursor.offset < oldest)) oldest = fromCursor.offset;
    if (oldest === undefined) return false;
    const rec = oldest === fromCursor?.offset ? fromCursor : await q.readOne(level, oldest);
    if (held === oldest) q.state.unhold(oldest);
    q.state.settle(level, oldest); // a tracked message is forgotten with it
    q.bytes -= rec === null ? 0 : recordBytes(rec);
    q.counters.dropped++;
    await q.journal.commit();
    return true;
  }

  /** The first never-delivered message of the level from its cursor on, if any. */
  private async firstFromCursor(level: number): Promise<LogRecord | undefined> {
    const q = this.q;
    const l = q.state.levels[level];
    let at = q.state.nextCursorOffset(level);
    while (at < l.endOffset) {
      const recs = await q.log(level).read(at, { maxBytes: 64 * 1024, maxRecords: 64 });
      if (recs.length === 0) return undefined;
      for (const rec of recs) {
        if (rec.offset >= l.endOffset) return undefined;
        if (q.state.isCandidate(level, rec.offset)) return rec;
      }
      at = recs[recs.length - 1].offset + 1;
    }
    return undefined;
  }
}
