// dedupId within a window for topics (and the restart rebuild and wait limit shared with queues): a
// repeat published within dedupWindowMs resolves with the original's result (same partition and offset).
// Restart-durable without a journal of its own: on open the window is rebuilt by reading each log
// from offsetForTimestamp(now - dedupWindowMs) to its end and taking every `wharf.dedupId` header
// (the topic manager runs that scan, sharing it with the idempotent producers' rebuild).
// Exactly-once relies on it: intent roll-forward (exchanges, transactions) republishes with the same
// dedupId (docs/exchanges.md).
import { assert } from '../../common/index.js';
import { waitForOriginals } from '../in-flight-waits.js';
import type { LogRecord, PartitionLog } from '../../storage/index.js';
import { H_DEDUP_ID, H_ID, utf8 } from '../message-codec.js';
import type { MessageInput, PublishResult } from '../types.js';

const REBUILD_READ_BYTES = 1024 * 1024;
interface Seen {
  /** A promise while the original is being stored (claimed by a publish in flight). */
  result: PublishResult | Promise<PublishResult>;
  expiresAtMs: number;
}

/** A fresh message's dedupId, claimed while it is being stored; index: its place in the fresh batch. */
interface Claim {
  resolve: (r: PublishResult) => void;
  reject: (e: unknown) => void;
  dedupId: string;
  index: number;
}

/** A repeat's original in flight: its dedupId and the claim's result, waited for before the batch is stored. */
interface InFlightOriginal {
  dedupId: string;
  result: Promise<PublishResult>;
}

/** What one look at a batch found (TopicDedupIndex.look). */
interface Look {
  /** The messages to store: each the first of its dedupId in the batch, none in the window. */
  fresh: MessageInput[];
  /** Each fresh message's index in the batch. */
  freshIndex: number[];
  /** Repeats inside this batch: [index in messages, index in fresh of the first]. */
  repeatsHere: Array<[number, number]>;
  /** Publishes in flight that this batch repeats: null while there are none (the usual case). */
  inFlight: InFlightOriginal[] | null;
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
   * Publishes through the window: repeats (also repeats inside this batch) resolve with the
   * original's result; the rest go to publishFresh as one batch. All or nothing, as any batch: one
   * holding repeats of publishes still in flight stores nothing until those have settled, then is
   * looked at again: a repeat of an original that was stored is its duplicate, one of an original
   * that failed is stored with the batch, in its place. Stored at once instead, the batch's other
   * messages were stored before a repeat of a failed original was published itself, and a call that
   * then failed had stored part of its batch (a caller's retry stored it twice).
   */
  async publish(
    messages: MessageInput[],
    nowMs: number,
    publishFresh: (fresh: MessageInput[]) => Promise<PublishResult[]>,
  ): Promise<PublishResult[]> {
    this.sweep(nowMs);
    const results: PublishResult[] = new Array(messages.length);
    let look = this.look(messages, nowMs, results);
    for (let round = 0; look.inFlight !== null; round++) {
      // This look claimed nothing (claim() runs after the last look), so there is nothing to let go.
      await this.awaitOriginals(look.inFlight, round);
      look = this.look(messages, nowMs, results);
    }
    const { fresh, freshIndex, repeatsHere } = look;
    const claims = this.claim(fresh, nowMs);
    let written: PublishResult[] = [];
    try {
      if (fresh.length > 0) written = await publishFresh(fresh);
    } catch (err) {
      // Each claim goes before its waiters hear of the failure: they look again and find the dedupId free.
      for (const c of claims) {
        this.seen.delete(c.dedupId);
        c.reject(err);
      }
      throw err;
    }
    for (const c of claims) {
      const r = written[c.index];
      this.seen.set(c.dedupId, { result: r, expiresAtMs: nowMs + this.windowMs });
      c.resolve(r);
    }
    for (let k = 0; k < freshIndex.length; k++) results[freshIndex[k]] = written[k];
    for (const [i, k] of repeatsHere) results[i] = { ...written[k], duplicate: true };
    return results;
  }

  /**
   * One look at a batch against the window: a repeat of a stored original gets its duplicate result
   * in `results`; the rest is fresh, a repeat inside the batch, or a repeat of a publish in flight.
   */
  private look(messages: MessageInput[], nowMs: number, results: PublishResult[]): Look {
    const fresh: MessageInput[] = [];
    const freshIndex: number[] = [];
    /** dedupIds first seen in this batch: their index in fresh. */
    const firstHere = new Map<string, number>();
    const repeatsHere: Array<[number, number]> = [];
    let inFlight: InFlightOriginal[] | null = null;
    for (let i = 0; i < messages.length; i++) {
      const dedupId = messages[i].dedupId;
      const first = dedupId === undefined ? undefined : firstHere.get(dedupId);
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
        if (prior.result instanceof Promise) (inFlight ??= []).push({ dedupId: dedupId!, result: prior.result });
        else results[i] = { ...prior.result, duplicate: true };
        continue;
      }
      if (dedupId !== undefined) firstHere.set(dedupId, fresh.length);
      freshIndex.push(i);
      fresh.push(messages[i]);
    }
    return { fresh, freshIndex, repeatsHere, inFlight };
  }

  /**
   * Claims the dedupIds of a batch's fresh messages (each first of its dedupId, none in the window)
   * until their write settles, so a publish repeating one meanwhile waits for its result. Made in
   * the step that found them fresh (no await between).
   */
  private claim(fresh: MessageInput[], nowMs: number): Claim[] {
    const claims: Claim[] = [];
    for (let index = 0; index < fresh.length; index++) {
      const dedupId = fresh[index].dedupId;
      if (dedupId === undefined) continue;
      let resolve!: (r: PublishResult) => void;
      let reject!: (e: unknown) => void;
      const pending = new Promise<PublishResult>((res, rej) => ((resolve = res), (reject = rej)));
      pending.catch(() => undefined); // unobserved when no publish repeats it
      assert(!this.seen.has(dedupId), 'a fresh dedupId is neither in the window nor claimed');
      this.seen.set(dedupId, { result: pending, expiresAtMs: nowMs + this.windowMs });
      claims.push({ resolve, reject, dedupId, index });
    }
    return claims;
  }

  /**
   * Waits until the publishes in flight that a batch repeats have settled, stored or failed (their
   * own callers get their errors); past MAX_IN_FLIGHT_WAITS waits, CONFLICT (in-flight-waits.ts).
   */
  private async awaitOriginals(inFlight: InFlightOriginal[], round: number): Promise<void> {
    await waitForOriginals(
      inFlight.map((o) => o.result),
      round,
      'topic publish repeats dedupIds',
    );
    for (const o of inFlight) {
      // publish settles a claim after replacing or deleting it: the next look cannot find an
      // original this publish waited for, so each wait is for another publish.
      assert(this.seen.get(o.dedupId)?.result !== o.result, 'a settled original has let its claim go');
    }
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
