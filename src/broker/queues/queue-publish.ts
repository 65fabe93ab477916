// The publish path of one queue: validation, dedup, producer rate limit, overflow (backpressure),
// then one append per priority level (or to the delay log), resolving once durable. The rate limit
// and the overflow policies that make room are queue-overflow.ts's; overflow 'dead-letter' stores
// here, since it writes.
import { LIMITS, WharfError, assert } from '../../common/index.js';
import type { RecordInput } from '../../storage/index.js';
import { RECOVERY_WINDOW_MS, type ProducerDedupe } from '../idempotence.js';
import { H_DEDUP_ID, H_ID, encodeMessage } from '../message-codec.js';
import { waitForOriginals } from '../in-flight-waits.js';
import { headerOf, scanLogSince } from '../topics/dedup-index.js';
import type { MessageInput, PublishResult } from '../types.js';
import { DedupWindow, contentDedupKey } from './dedup-window.js';
import type { QueueEngine } from './queue.js';
import { highestLevelFirst } from './queue-handoff.js';
import { OverflowGate } from './queue-overflow.js';
import { DELAY_LEVEL } from './queue-state.js';
import { deadLetterRecord, recordBytes, withDueHeader } from './queue-record.js';

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

/** A dedup key whose original is being stored: settles with whether it was. */
interface StoringEntry {
  id: string;
  stored: Promise<boolean>;
  settle(stored: boolean): void;
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
  /** The producer rate limit and room under maxLength/maxBytes (queue-overflow.ts). */
  private readonly gate: OverflowGate;
  /**
   * Settles once an overflow 'dead-letter' publish that writes its dead letters before it stores
   * the rest is done (storeOrDeadLetter); null when none is on its way.
   */
  private deadLettering: Promise<void> | null = null;

  constructor(
    private readonly q: QueueEngine,
    /** Idempotent producers' table: learns every write here, and this queue's recent records on open. */
    private readonly producers: ProducerDedupe,
  ) {
    this.dedup = new DedupWindow(q.options.dedupWindowMs);
    this.gate = new OverflowGate(q);
  }

  /**
   * Stores the batch's messages not seen before; a repeat resolves with its original's id. All or
   * nothing, as any batch: one holding repeats of originals still being stored waits for them first.
   */
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
    const encoded = this.encode(inputs, now);
    const fresh: Pending[] = [];
    /** A key's first message in this batch, and the later ones that repeat it (stored or refused with it). */
    const firstOfKey = new Map<string, Pending>();
    const repeatsInBatch: Array<{ p: Pending; first: Pending }> = [];
    let lookupNowMs = now;
    for (let round = 0; ; round++) {
      /** Originals that other publishes are still storing, repeated here: null while there are none (the usual case). */
      let inFlight: Array<{ key: string; entry: StoringEntry }> | null = null;
      for (const p of encoded) {
        if (p.dedupKey !== undefined && q.options.dedupWindowMs > 0) {
          const first = firstOfKey.get(p.dedupKey);
          if (first !== undefined) {
            repeatsInBatch.push({ p, first });
            continue;
          }
          const entry = this.storing.get(p.dedupKey);
          if (entry !== undefined) {
            (inFlight ??= []).push({ key: p.dedupKey, entry });
            continue;
          }
          const original = this.dedup.lookup(p.dedupKey, lookupNowMs);
          if (original !== undefined) {
            results[p.index] = { id: original, duplicate: true };
            continue;
          }
          firstOfKey.set(p.dedupKey, p);
        }
        fresh.push(p);
      }
      if (inFlight === null) break;
      // Nothing of this batch is stored before those originals have settled (this look claimed
      // nothing: storeFresh claims), then the batch is looked at again from the start: a repeat of
      // an original that was stored is its duplicate, one of an original that failed is stored with
      // the batch, in its place. Stored at once instead, the batch's other messages were stored
      // before a repeat of a failed original was published itself, and a call that then failed had
      // stored part of its batch (a caller's retry stored it twice).
      await this.awaitOriginals(inFlight, round);
      lookupNowMs = q.clock.now();
      fresh.length = 0;
      firstOfKey.clear();
      repeatsInBatch.length = 0;
    }
    if (fresh.length > 0) await this.storeFresh(fresh, inputs, results);
    for (const { p, first } of repeatsInBatch) results[p.index] = { id: first.id, duplicate: true };
    return results;
  }

  /**
   * Encodes and checks every message before the dedup window learns any key: a batch refused as
   * invalid must leave its dedupIds unseen, or a corrected retry would be taken for a duplicate.
   */
  private encode(inputs: MessageInput[], nowMs: number): Pending[] {
    const q = this.q;
    const encoded: Pending[] = new Array(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i];
      const enc = encodeMessage(input, nowMs, q.options.maxMessageBytes, inputs.length === 1 ? 'message' : i);
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
    return encoded;
  }

  /**
   * Stores messages no publish has stored yet. Their dedup keys count as being stored until the
   * write settles: a publish holding a repeat meanwhile waits for it (publish), and only a stored
   * message ever makes a later one a duplicate.
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
        // publish() waited for a key being stored, and answers a key repeated within the batch itself.
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

  /**
   * Waits until the originals that other publishes are storing, which a batch repeats, have
   * settled, stored or not (their own callers get their errors); past MAX_IN_FLIGHT_WAITS waits,
   * CONFLICT (in-flight-waits.ts).
   */
  private async awaitOriginals(inFlight: Array<{ key: string; entry: StoringEntry }>, round: number): Promise<void> {
    await waitForOriginals(
      inFlight.map((w) => w.entry.stored),
      round,
      `publish to queue ${JSON.stringify(this.q.name)} repeats dedup keys`,
    );
    for (const { key, entry } of inFlight) {
      // storeFresh lets a key go before it settles the key's entry: the next look cannot find an
      // original this publish waited for, so each wait is for another publish.
      assert(this.storing.get(key) !== entry, 'a settled original has let its dedup key go');
    }
  }

  private async store(fresh: Pending[]): Promise<void> {
    const q = this.q;
    const bytes = fresh.reduce((n, p) => n + p.sizeBytes, 0);
    await this.gate.admitRate(fresh.length, bytes);
    // Behind a publish storing what fit beside its dead letters only once they are written: found
    // room (freed by an ack meanwhile) would put this publish's messages ahead of that one's. The
    // check below follows this one in the same step.
    while (this.deadLettering !== null) await this.deadLettering;
    if (q.options.overflow === 'dead-letter' && this.gate.isOver(fresh.length, bytes))
      return this.storeOrDeadLetter(fresh);
    const outcome = await this.gate.makeRoom(fresh.length, bytes, Math.max(...fresh.map((p) => p.level)));
    if (outcome === 'drop-incoming') {
      q.counters.dropped += fresh.length;
      for (const p of fresh) p.overflow = 'dropped';
      return;
    }
    await this.appendReserved(fresh, bytes);
  }

  /**
   * Appends messages whose room is reserved, giving each level's share of the reservation back in
   * the step its messages start to count as stored: given back after the whole append, they were
   * counted twice meanwhile, and a concurrent publish dropped (or refused, or dead-lettered) one
   * message too many for them. What a failed append did not store is given back at the end.
   */
  private async appendReserved(fresh: Pending[], reservedBytes: number): Promise<void> {
    let count = fresh.length;
    let bytes = reservedBytes;
    try {
      await this.append(fresh, (storedCount, storedBytes) => {
        this.gate.unreserve(storedCount, storedBytes);
        count -= storedCount;
        bytes -= storedBytes;
      });
    } finally {
      this.gate.unreserve(count, bytes);
    }
  }

  /**
   * overflow 'dead-letter' (RabbitMQ's reject-publish-dlx), message by message: each message that
   * fits beside the ones before it is stored, each that does not goes to the dead-letter queue.
   * The dead letters are written first, and what fits is stored once they are: a dead-letter queue
   * that cannot take them fails the publish (QUEUE_FULL) with nothing of it stored. Written side by
   * side, a failed dead letter would fail a publish whose other messages were stored, and the
   * publisher's retry would store them twice; kept in this queue, the dead letters would put it
   * over its limits. (Should the append here fail after the dead letters were written, those stay:
   * a copy too many in the dead-letter queue, never in this one.)
   */
  private async storeOrDeadLetter(fresh: Pending[]): Promise<void> {
    const q = this.q;
    const fit: Pending[] = [];
    const over: Pending[] = [];
    let fitBytes = 0;
    for (const p of fresh) {
      if (this.gate.isOver(fit.length + 1, fitBytes + p.sizeBytes)) over.push(p);
      else {
        fit.push(p);
        fitBytes += p.sizeBytes;
      }
    }
    this.gate.reserve(fit.length, fitBytes); // in the same step as the checks above
    const dlq = q.options.deadLetterQueue!;
    const facts = q.facts('overflow', undefined);
    const records = over.map((p) => deadLetterRecord({ ...p.record, offset: -1 }, facts));
    // Async: a dead-letter queue gone (NOT_FOUND, thrown at once) fails here as any failed append.
    const deadLetters = (async () => q.host.appendTo(dlq, records))();
    const done = deadLetters.then(
      async () => {
        q.counters.deadLettered += over.length;
        for (const p of over) p.overflow = 'dead-lettered';
        await this.appendReserved(fit, fitBytes);
      },
      (err: unknown) => {
        q.counters.deadLetterErrors += over.length;
        this.gate.unreserve(fit.length, fitBytes);
        const why = err instanceof Error ? err.message : String(err);
        throw this.gate.full(
          `: its dead-letter queue ${JSON.stringify(dlq)} could not take the ${over.length} message(s) over the limits (${why}), so nothing of this publish was stored`,
          err,
        );
      },
    );
    if (fit.length === 0) return done; // nothing for a later publish to go ahead of
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.deadLettering = settled;
    try {
      await done;
    } finally {
      if (this.deadLettering === settled) this.deadLettering = null;
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
    if (q.options.overflow === 'reject' && this.gate.isOver(inputs.length, bytes)) throw this.gate.full();
  }

  /** onStored: a level's messages count as stored now (called in that step, once per level). */
  private async append(fresh: Pending[], onStored: (count: number, bytes: number) => void): Promise<void> {
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
        const levelBytes = ps.reduce((n, p) => n + p.sizeBytes, 0);
        const base = await q.appendLevel(level, records, levelBytes, () => onStored(ps.length, levelBytes));
        if (level === DELAY_LEVEL) {
          ps.forEach((p, i) => q.delayed.offer(now + p.delayMs, base + i));
          q.delayed.arm();
        }
      }),
    );
  }
}
