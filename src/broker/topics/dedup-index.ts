// dedupId within a window for topics (and the restart rebuild shared with queues): a repeat
// published within dedupWindowMs resolves with the original's result (same partition and offset).
// Restart-durable without a journal of its own: on open the window is rebuilt by reading each log
// from offsetForTimestamp(now - dedupWindowMs) to its end and taking every `wharf.dedupId` header
// (the topic manager runs that scan, sharing it with the idempotent producers' rebuild).
// Exactly-once relies on it: intent roll-forward (exchanges, transactions) republishes with the same
// dedupId (docs/exchanges.md).
import type { LogRecord, PartitionLog } from '../../storage/index.js';
import { H_DEDUP_ID, H_ID, utf8 } from '../message-codec.js';
import type { MessageInput, PublishResult } from '../types.js';

const REBUILD_READ_BYTES = 1024 * 1024;

interface Seen {
  result: PublishResult | Promise<PublishResult>;
  expiresAtMs: number;
}

/** Calls visit for every record of log with timestamp >= fromMs (bounded by the window, read in chunks). */
export async function scanLogSince(log: PartitionLog, fromMs: number, visit: (rec: LogRecord) => void): Promise<void> {
  let at = Math.max(log.startOffset, await log.offsetForTimestamp(fromMs));
  const end = log.endOffset;
  while (at < end) {
    const recs = await log.read(at, { maxBytes: REBUILD_READ_BYTES });
    if (recs.length === 0) return;
    for (const rec of recs) if (rec.offset < end) visit(rec);
    at = recs[recs.length - 1].offset + 1;
  }
}

/** The record's header value as a string, or undefined. */
export function headerOf(rec: LogRecord, key: string): string | undefined {
  // Decoded as every stored string is (message-codec's utf8), so a dedupId reads as it was published.
  for (const h of rec.headers) if (h.key === key) return utf8(h.value);
  return undefined;
}

export class TopicDedupIndex {
  /** In expiry order (sweep stops at the first live entry); lookups check expiry themselves all the same. */
  private readonly seen = new Map<string, Seen>();
  /** Records read back on open, remembered in expiry order once every partition is read (endRebuild). */
  private observed: Array<{ dedupId: string; result: PublishResult; expiresAtMs: number }> = [];

  constructor(private readonly windowMs: number) {}

  get size(): number {
    return this.seen.size;
  }

  /** The window's first timestamp at nowMs: the rebuild on open scans from here (or earlier). */
  since(nowMs: number): number {
    return nowMs - this.windowMs;
  }

  /** One record of partition p read back on open (the topic scans its logs once for this and for producer ids). */
  observe(rec: LogRecord, p: number, nowMs: number): void {
    if (rec.timestampMs < nowMs - this.windowMs) return;
    const dedupId = headerOf(rec, H_DEDUP_ID);
    if (dedupId === undefined) return;
    const id = headerOf(rec, H_ID) ?? '';
    this.observed.push({
      dedupId,
      result: { id, partition: p, offset: rec.offset },
      expiresAtMs: rec.timestampMs + this.windowMs,
    });
  }

  /**
   * Learns what observe read, in timestamp order: partitions are read one after another, so their
   * records come out of time order, and the window must hold them as it would have while running
   * (expiry order, and the later of two records of one dedupId winning).
   */
  endRebuild(): void {
    const observed = this.observed;
    this.observed = [];
    observed.sort((a, b) => a.expiresAtMs - b.expiresAtMs); // stable: one partition's order is kept within a ms
    for (const o of observed) this.remember(o.dedupId, o.result, o.expiresAtMs);
  }

  /**
   * Publishes through the window: repeats (also repeats inside this batch, or of a publish still in
   * flight) resolve with the original's result; the rest go to publishFresh as one batch.
   */
  async publish(
    messages: MessageInput[],
    nowMs: number,
    publishFresh: (fresh: MessageInput[]) => Promise<PublishResult[]>,
  ): Promise<PublishResult[]> {
    this.sweep(nowMs);
    const results: Array<PublishResult | Promise<PublishResult> | undefined> = new Array(messages.length);
    const fresh: MessageInput[] = [];
    const freshIndex: number[] = [];
    const settle: Array<{
      resolve: (r: PublishResult) => void;
      reject: (e: unknown) => void;
      dedupId: string;
      index: number;
    }> = [];
    /** dedupIds first claimed by this batch: their index in fresh. */
    const claimedHere = new Map<string, number>();
    /** Repeats inside this batch: [index in messages, index in fresh of the first]. */
    const repeatsHere: Array<[number, number]> = [];
    for (let i = 0; i < messages.length; i++) {
      const dedupId = messages[i].dedupId;
      const first = dedupId === undefined ? undefined : claimedHere.get(dedupId);
      if (first !== undefined) {
        // A repeat inside the batch shares its fate: a duplicate of what the first stored, or
        // refused with the whole batch (never published itself: a refused batch stores nothing).
        repeatsHere.push([i, first]);
        continue;
      }
      let prior = dedupId === undefined ? undefined : this.seen.get(dedupId);
      if (prior !== undefined && !(prior.result instanceof Promise) && prior.expiresAtMs <= nowMs) {
        // Its window is over (the sweep stops at an entry still in flight, so it may not have reached this one).
        this.seen.delete(dedupId!);
        prior = undefined;
      }
      if (prior !== undefined) {
        const message = messages[i];
        // A repeat of a publish still in flight waits for it: a duplicate of what it stored, or, if
        // it failed, published itself (only a stored message makes a later one a duplicate).
        results[i] = Promise.resolve(prior.result).then(
          (r) => ({ ...r, duplicate: true }),
          () => this.publish([message], nowMs, publishFresh).then((rs) => rs[0]),
        );
        continue;
      }
      if (dedupId !== undefined) {
        // Claimed before the write, so a concurrent repeat waits for this publish's result.
        let resolve!: (r: PublishResult) => void;
        let reject!: (e: unknown) => void;
        const pending = new Promise<PublishResult>((res, rej) => ((resolve = res), (reject = rej)));
        pending.catch(() => undefined);
        this.seen.set(dedupId, { result: pending, expiresAtMs: nowMs + this.windowMs });
        claimedHere.set(dedupId, fresh.length);
        settle.push({ resolve, reject, dedupId, index: fresh.length });
      }
      freshIndex.push(i);
      fresh.push(messages[i]);
    }
    let written: PublishResult[] = [];
    try {
      if (fresh.length > 0) written = await publishFresh(fresh);
    } catch (err) {
      for (const s of settle) {
        this.seen.delete(s.dedupId);
        s.reject(err);
      }
      throw err;
    }
    for (const s of settle) {
      const r = written[s.index];
      this.seen.set(s.dedupId, { result: r, expiresAtMs: nowMs + this.windowMs });
      s.resolve(r);
    }
    freshIndex.forEach((i, k) => (results[i] = written[k]));
    for (const [i, k] of repeatsHere) results[i] = { ...written[k], duplicate: true };
    return Promise.all(results as Array<PublishResult | Promise<PublishResult>>);
  }

  private remember(dedupId: string, result: PublishResult, expiresAtMs: number): void {
    this.seen.delete(dedupId);
    this.seen.set(dedupId, { result, expiresAtMs });
  }

  private sweep(nowMs: number): void {
    for (const [k, v] of this.seen) {
      if (v.expiresAtMs > nowMs) break;
      if (!(v.result instanceof Promise)) this.seen.delete(k);
      else break;
    }
  }
}
