// RECEIVE answers remembered by attempt id (protocol version 4), as SQS's ReceiveRequestAttemptId:
// a client whose connection dropped before the answer arrived sends the same RECEIVE again, and
// gets the same messages with the same receipts, instead of fresh ones while the first lease holds
// the lost ones until its visibility timeout (in a FIFO queue, their whole group). What is kept is
// the answer's encoded deliveries (a copy: no stored record is held) and their receipts, so a retry
// can extend the leases that still hold and leave out the rest. Bounded in count, bytes and age.
// A retry may also come while the first RECEIVE still waits (the server has not yet seen the old
// connection go, a half-open link): it waits for that one to end, then reads its answer here.
import type { Clock } from '../../common/index.js';

export interface ReceiveAttemptLimits {
  maxAttempts: number;
  maxBytes: number;
  ttlMs: number;
}

export const RECEIVE_ATTEMPT_LIMITS: Readonly<ReceiveAttemptLimits> = {
  /** Answers remembered at once; the oldest is forgotten first. */
  maxAttempts: 10_000,
  /** Bytes of remembered deliveries at once; the oldest answers are forgotten first. */
  maxBytes: 64 * 1024 * 1024,
  /** How long an answer is remembered (SQS keeps a receive attempt five minutes). */
  ttlMs: 5 * 60_000,
};

/** One remembered answer: its deliveries' encodings back to back, where each starts, and their receipts. */
export interface RememberedAnswer {
  readonly bytes: Buffer;
  readonly starts: readonly number[];
  readonly receipts: readonly string[];
}

interface Entry extends RememberedAnswer {
  readonly expiresAtMs: number;
}

/** Bytes an answer is counted for: its deliveries, and its receipts and starts. */
function footprint(a: RememberedAnswer): number {
  let n = a.bytes.length + 8 * a.starts.length;
  for (const r of a.receipts) n += r.length;
  return n;
}

export class ReceiveAttempts {
  /** By key, oldest first (a replaced answer moves to the end; all live ttlMs, so the front expires first). */
  private readonly entries = new Map<string, Entry & { footprint: number }>();
  private bytes = 0;
  /** Attempts whose RECEIVE is still waiting: settles when it has ended, answered or not. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    private readonly clock: Clock,
    private readonly limits: Readonly<ReceiveAttemptLimits> = RECEIVE_ATTEMPT_LIMITS,
  ) {}

  /** Attempt ids cannot hold U+0000 (the codec): the key's last one separates the pair, so one key per pair. */
  private static key(queue: string, attemptId: string): string {
    return `${queue}\u0000${attemptId}`;
  }

  /** While the attempt's RECEIVE runs: a retry arriving meanwhile waits for it (whenEnded). Call the returned function when it has ended. */
  begin(queue: string, attemptId: string): () => void {
    const key = ReceiveAttempts.key(queue, attemptId);
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    this.running.set(key, ended);
    return () => {
      if (this.running.get(key) === ended) this.running.delete(key);
      end();
    };
  }

  /** Settles once the attempt's RECEIVE still running (if any) has ended. */
  whenEnded(queue: string, attemptId: string): Promise<void> | undefined {
    return this.running.get(ReceiveAttempts.key(queue, attemptId));
  }

  get size(): number {
    return this.entries.size;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** The answer last given to this attempt, if it is still remembered. */
  get(queue: string, attemptId: string): RememberedAnswer | undefined {
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
  remember(queue: string, attemptId: string, answer: RememberedAnswer): void {
    const key = ReceiveAttempts.key(queue, attemptId);
    const old = this.entries.get(key);
    if (old !== undefined) this.drop(key, old);
    const now = this.clock.now();
    // Expired answers go first (they are at the front), so an idle book does not hold them long.
    for (const [k, e] of this.entries) {
      if (e.expiresAtMs > now) break;
      this.drop(k, e);
    }
    const size = footprint(answer);
    if (answer.receipts.length === 0 || size > this.limits.maxBytes) return;
    this.entries.set(key, { ...answer, expiresAtMs: now + this.limits.ttlMs, footprint: size });
    this.bytes += size;
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

  private drop(key: string, e: { footprint: number }): void {
    this.entries.delete(key);
    this.bytes -= e.footprint;
  }
}
