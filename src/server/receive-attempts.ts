// Receive answers remembered by attempt id, as SQS's ReceiveRequestAttemptId, for the native
// RECEIVE (protocol version 4) and the HTTP receive: a client whose answer was lost (a dropped
// connection, an HTTP timeout) asks again with the same attempt id, and gets the same deliveries
// with the same receipts, instead of fresh ones while the first lease holds the lost ones until
// its visibility timeout (in a FIFO queue, their whole group). A retry extends the leases that
// still hold and leaves out the rest. A retry may also come while the first receive still waits
// (the server has not yet seen the old connection go, a half-open link): it waits for that one to
// end, then reads its answer here. Bounded in count, bytes and age.
import type { Clock } from '../common/index.js';

export interface ReceiveAttemptLimits {
  /** Answers remembered at once; the oldest is forgotten first. */
  maxAttempts: number;
  /** Bytes of remembered answers at once (their deliveries and receipts); the oldest are forgotten first. */
  maxBytes: number;
  /** How long an answer is remembered (SQS keeps a receive attempt five minutes). */
  ttlMs: number;
}

export const RECEIVE_ATTEMPT_LIMITS: Readonly<ReceiveAttemptLimits> = {
  maxAttempts: 10_000,
  maxBytes: 64 * 1024 * 1024,
  ttlMs: 5 * 60_000,
};

/** One remembered answer: its deliveries (as the protocol sends them) and their receipts, in order. */
export interface RememberedAnswer<T> {
  readonly items: readonly T[];
  readonly receipts: readonly string[];
}

interface Entry<T> extends RememberedAnswer<T> {
  readonly expiresAtMs: number;
  readonly footprint: number;
}

export class ReceiveAttempts<T> {
  /** By key, oldest first (a replaced answer moves to the end; all live ttlMs, so the front expires first). */
  private readonly entries = new Map<string, Entry<T>>();
  private bytes = 0;
  /** Attempts whose receive is still waiting: settles when it has ended, answered or not. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    private readonly clock: Clock,
    /** Bytes one delivery is counted for. */
    private readonly sizeOf: (item: T) => number,
    private readonly limits: Readonly<ReceiveAttemptLimits> = RECEIVE_ATTEMPT_LIMITS,
  ) {}

  /** Attempt ids cannot hold U+0000 (printable ASCII only): the key's last one separates the pair, so one key per pair. */
  private static key(queue: string, attemptId: string): string {
    return `${queue}\u0000${attemptId}`;
  }

  get size(): number {
    return this.entries.size;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /**
   * Runs one receive of an attempt, one at a time per attempt (so two retries that wait together
   * never lease two sets of messages): an answer remembered for it whose leases still hold (each
   * extended by `extend`) is given again through `answerAgain`; else `fresh` runs, and remembers
   * what it answers. `fresh` and `answerAgain` send the answer their own way (protocol, HTTP).
   */
  async serve<R>(
    queue: string,
    attemptId: string,
    extend: (receipt: string) => Promise<void>,
    answerAgain: (answer: RememberedAnswer<T>) => R,
    fresh: () => Promise<R>,
  ): Promise<R> {
    for (
      let running = this.whenEnded(queue, attemptId);
      running !== undefined;
      running = this.whenEnded(queue, attemptId)
    )
      await running;
    const ended = this.begin(queue, attemptId);
    try {
      const again = await this.retry(queue, attemptId, extend);
      return again !== null ? answerAgain(again) : await fresh();
    } finally {
      ended();
    }
  }

  /** While the attempt's receive runs: a retry arriving meanwhile waits for it (whenEnded). Call the returned function when it has ended. */
  private begin(queue: string, attemptId: string): () => void {
    const key = ReceiveAttempts.key(queue, attemptId);
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    this.running.set(key, ended);
    return () => {
      if (this.running.get(key) === ended) this.running.delete(key);
      end();
    };
  }

  /** Settles once the attempt's receive still running (if any) has ended. */
  private whenEnded(queue: string, attemptId: string): Promise<void> | undefined {
    return this.running.get(ReceiveAttempts.key(queue, attemptId));
  }

  /** The answer last given to this attempt, if it is still remembered. */
  get(queue: string, attemptId: string): RememberedAnswer<T> | undefined {
    const key = ReceiveAttempts.key(queue, attemptId);
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAtMs <= this.clock.now()) {
      this.drop(key, e);
      return undefined;
    }
    return e;
  }

  /** Remembers an answer (replacing the attempt's earlier one); an empty one is forgotten instead. */
  remember(queue: string, attemptId: string, answer: RememberedAnswer<T>): void {
    const key = ReceiveAttempts.key(queue, attemptId);
    const old = this.entries.get(key);
    if (old !== undefined) this.drop(key, old);
    const now = this.clock.now();
    // Expired answers go first (they are at the front), so an idle book does not hold them long.
    for (const [k, e] of this.entries) {
      if (e.expiresAtMs > now) break;
      this.drop(k, e);
    }
    let footprint = 0;
    for (const item of answer.items) footprint += this.sizeOf(item);
    for (const r of answer.receipts) footprint += r.length;
    if (answer.receipts.length === 0 || footprint > this.limits.maxBytes) return;
    this.entries.set(key, {
      items: answer.items,
      receipts: answer.receipts,
      expiresAtMs: now + this.limits.ttlMs,
      footprint,
    });
    this.bytes += footprint;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.limits.maxAttempts && this.bytes <= this.limits.maxBytes) break;
      this.drop(k, e);
    }
  }

  forget(queue: string, attemptId: string): void {
    const key = ReceiveAttempts.key(queue, attemptId);
    const e = this.entries.get(key);
    if (e !== undefined) this.drop(key, e);
  }

  /**
   * A retry of an attempt answered before: the deliveries of that answer whose leases still hold,
   * each extended by `extend` (the caller's lease length), in order; the answer is remembered as
   * what is left of it. Null when nothing was remembered or no lease holds any more (then forgotten:
   * the retry is a new receive).
   */
  async retry(
    queue: string,
    attemptId: string,
    extend: (receipt: string) => Promise<void>,
  ): Promise<RememberedAnswer<T> | null> {
    const earlier = this.get(queue, attemptId);
    if (earlier === undefined) return null;
    const extended = await Promise.allSettled(earlier.receipts.map(extend));
    const items: T[] = [];
    const receipts: string[] = [];
    extended.forEach((e, i) => {
      if (e.status !== 'fulfilled') return; // settled or expired since
      items.push(earlier.items[i]);
      receipts.push(earlier.receipts[i]);
    });
    if (items.length === 0) {
      this.forget(queue, attemptId);
      return null;
    }
    if (items.length < earlier.items.length) this.remember(queue, attemptId, { items, receipts });
    return { items, receipts };
  }

  private drop(key: string, e: Entry<T>): void {
    this.entries.delete(key);
    this.bytes -= e.footprint;
  }
}
