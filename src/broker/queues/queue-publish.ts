// The publish path of one queue: validation, dedup, producer rate limit, overflow (backpressure),
// then one append per priority level (or to the delay log), resolving once durable.
import { LIMITS, WharfError, assert } from '../../common/index.js';
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
  /** Set by store when the overflow policy dead-lettered or dropped the message instead of storing it. */
  overflow?: 'dead-lettered' | 'dropped';
}

type RoomOutcome = 'ok' | 'drop-incoming';

/** A dedup key whose original is being stored: settles with whether it was. */
interface StoringEntry {
  id: string;
  stored: Promise<boolean>;
  settle(stored: boolean): void;
}

/** A ready message chosen to make room (drop-oldest, drop-lowest-priority), not dropped yet. */
interface DropVictim {
  level: number;
  offset: number;
  held: boolean;
  sizeBytes: number;
}

/**
 * A message's delay: its own delayMs, else the queue's. A FIFO queue takes none of its own (as SQS
 * FIFO queues refuse a per-message delay): a delayed message waits apart from its group and would be
 * overtaken by the group's later messages. The queue's delayMs delays every message alike.
 */
function delayOf(q: QueueEngine, input: MessageInput, index: number): number {
  if (q.options.fifo === true && input.delayMs !== undefined && input.delayMs > 0)
    throw new WharfError(
      'INVALID_ARGUMENT',
      `messages[${index}].delayMs ${input.delayMs}: a FIFO queue takes no per-message delay (its order per group would not hold); set the queue's delayMs instead`,
    );
  const delayMs = input.delayMs ?? q.options.delayMs ?? 0;
  if (delayMs > LIMITS.maxDelayMs)
    throw new WharfError(
      'INVALID_ARGUMENT',
      `messages[${index}].delayMs ${delayMs} exceeds maxDelayMs ${LIMITS.maxDelayMs}`,
    );
  return delayMs;
}

export class QueuePublisher {
  private readonly dedup: DedupWindow;
  /** Dedup keys of messages being stored now (not yet durable, or failed): see storeFresh. */
  private readonly storing = new Map<string, StoringEntry>();
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
      const delayMs = delayOf(q, input, i);
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
    /** Repeats of an original still being stored: answered once it is, stored themselves if it is not. */
    const waiting: Array<{ p: Pending; original: Promise<boolean> }> = [];
    /** A key's first message in this batch, and the later ones that repeat it (stored or refused with it). */
    const firstOfKey = new Map<string, Pending>();
    const repeatsInBatch: Array<{ p: Pending; first: Pending }> = [];
    for (const p of encoded) {
      if (p.dedupKey !== undefined && q.options.dedupWindowMs > 0) {
        const first = firstOfKey.get(p.dedupKey);
        if (first !== undefined) {
          repeatsInBatch.push({ p, first });
          continue;
        }
        const inFlight = this.storing.get(p.dedupKey);
        if (inFlight !== undefined) {
          waiting.push({ p, original: inFlight.stored });
          continue;
        }
        const original = this.dedup.lookup(p.dedupKey, now);
        if (original !== undefined) {
          results[p.index] = { id: original, duplicate: true };
          continue;
        }
        firstOfKey.set(p.dedupKey, p);
      }
      fresh.push(p);
    }
    if (fresh.length > 0) await this.storeFresh(fresh, inputs, results);
    for (const { p, first } of repeatsInBatch) results[p.index] = { id: first.id, duplicate: true };
    if (waiting.length > 0) await this.answerRepeats(waiting, inputs, results);
    return results;
  }

  /**
   * Stores messages no publish has stored yet. Their dedup keys count as being stored until the
   * write settles: a repeat meanwhile waits for it (answerRepeats), and only a stored message ever
   * makes a later one a duplicate.
   */
  private async storeFresh(fresh: Pending[], inputs: MessageInput[], results: PublishResult[]): Promise<void> {
    const q = this.q;
    const now = q.clock.now();
    const keyed: Array<{ key: string; entry: StoringEntry }> = [];
    if (q.options.dedupWindowMs > 0) {
      for (const p of fresh) {
        if (p.dedupKey === undefined) continue;
        let settle!: (stored: boolean) => void;
        const stored = new Promise<boolean>((resolve) => (settle = resolve));
        const entry: StoringEntry = { id: p.id, stored, settle };
        // publish() sent a key being stored, or repeated within the batch, to the waiting repeats.
        assert(!this.storing.has(p.dedupKey), 'a dedup key is stored by one publish at a time');
        this.storing.set(p.dedupKey, entry);
        keyed.push({ key: p.dedupKey, entry });
      }
    }
    let ok = false;
    try {
      await this.store(fresh);
      ok = true;
    } finally {
      for (const { key, entry } of keyed) {
        if (this.storing.get(key) === entry) this.storing.delete(key);
        if (ok) this.dedup.remember(key, entry.id, now);
        entry.settle(ok);
      }
    }
    q.rates.publish.add(fresh.length, q.clock.now());
    q.notify();
    for (const p of fresh)
      results[p.index] = p.overflow === undefined ? { id: p.id } : { id: p.id, overflow: p.overflow };
    // Usually every message of the publish is fresh: then they are the inputs, in order.
    if (fresh.length === inputs.length) this.producers.learn(q.name, inputs, results);
    else
      this.producers.learn(
        q.name,
        fresh.map((p) => inputs[p.index]),
        fresh.map((p) => results[p.index]),
      );
  }

  /** Repeats of originals that were being stored: duplicates of a stored original, else stored now. */
  private async answerRepeats(
    waiting: Array<{ p: Pending; original: Promise<boolean> }>,
    inputs: MessageInput[],
    results: PublishResult[],
  ): Promise<void> {
    const retry: Pending[] = [];
    for (const w of waiting) {
      if (!(await w.original)) {
        retry.push(w.p);
        continue;
      }
      const id = this.dedup.lookup(w.p.dedupKey!, this.q.clock.now());
      // The original was stored: its key is in the window (unless the window already ended).
      if (id !== undefined) results[w.p.index] = { id, duplicate: true };
      else retry.push(w.p);
    }
    if (retry.length === 0) return;
    // Each goes through publish again: its own original may be stored by now, or being stored by another repeat.
    const again = await this.publish(retry.map((p) => inputs[p.index]));
    retry.forEach((p, i) => (results[p.index] = again[i]));
  }

  private async store(fresh: Pending[]): Promise<void> {
    const q = this.q;
    const bytes = fresh.reduce((n, p) => n + p.sizeBytes, 0);
    await this.admitRate(fresh.length, bytes);
    if (q.options.overflow === 'dead-letter' && this.isOver(fresh.length, bytes)) return this.storeOrDeadLetter(fresh);
    const outcome = await this.makeRoom(fresh.length, bytes, Math.max(...fresh.map((p) => p.level)));
    if (outcome === 'drop-incoming') {
      q.counters.dropped += fresh.length;
      for (const p of fresh) p.overflow = 'dropped';
      return;
    }
    try {
      await this.append(fresh);
    } finally {
      this.unreserve(fresh.length, bytes);
    }
  }

  /**
   * overflow 'dead-letter' (RabbitMQ's reject-publish-dlx), message by message: each message that
   * fits beside the ones before it is stored, each that does not goes to the dead-letter queue.
   */
  private async storeOrDeadLetter(fresh: Pending[]): Promise<void> {
    const q = this.q;
    const fit: Pending[] = [];
    const over: Pending[] = [];
    let fitBytes = 0;
    for (const p of fresh) {
      if (this.isOver(fit.length + 1, fitBytes + p.sizeBytes)) over.push(p);
      else {
        fit.push(p);
        fitBytes += p.sizeBytes;
      }
    }
    this.reserve(fit.length, fitBytes); // in the same step as the checks above
    try {
      const facts = q.facts('overflow', undefined);
      const writes = await Promise.allSettled([
        fit.length > 0 ? this.append(fit) : Promise.resolve(),
        q.host
          .appendTo(
            q.options.deadLetterQueue!,
            over.map((p) => deadLetterRecord({ ...p.record, offset: -1 }, facts)),
          )
          .then(() => {
            q.counters.deadLettered += over.length;
            for (const p of over) p.overflow = 'dead-lettered';
          }),
      ]);
      for (const w of writes) if (w.status === 'rejected') throw w.reason;
    } finally {
      this.unreserve(fit.length, fitBytes);
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

  // for exchanges: the admission check of atomic routing and transactions — throws what publish
  // would throw for these messages (invalid, too large, QUEUE_FULL under overflow 'reject'), writes nothing.
  admit(inputs: MessageInput[]): void {
    const q = this.q;
    q.assertOpen();
    const now = q.clock.now();
    let bytes = 0;
    inputs.forEach((input, i) => {
      const enc = encodeMessage(input, now, q.options.maxMessageBytes, i);
      delayOf(q, input, i);
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

  /** Whether a publish would be over maxLength or maxBytes even in an empty queue. */
  private overLimitsAlone(count: number, bytes: number): boolean {
    const o = this.q.options;
    return (o.maxLength !== undefined && count > o.maxLength) || (o.maxBytes !== undefined && bytes > o.maxBytes);
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

  /** Applies the overflow policy (all but 'dead-letter': storeOrDeadLetter) until the batch fits; reserves its room. */
  private async makeRoom(count: number, bytes: number, incomingLevel: number): Promise<RoomOutcome> {
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
  private reserve(count: number, bytes: number): void {
    this.reservedCount += count;
    this.reservedBytes += bytes;
  }

  private unreserve(count: number, bytes: number): void {
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
    if (victims.length > 0) await q.journal.commit();
    this.reserve(count, bytes);
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
