// RECEIVE answers remembered by attempt id (protocol version 4), as SQS's ReceiveRequestAttemptId:
// a client whose connection dropped before the answer arrived sends the same RECEIVE again, and
// gets the same messages with the same receipts, instead of fresh ones while the first lease holds
// the lost ones until its visibility timeout (in a FIFO queue, their whole group). What is kept is
// the answer's encoded deliveries (a copy: no stored record is held) and their receipts, so a retry
// can extend the leases that still hold and leave out the rest. Bounded in count, bytes and age.
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

export class ReceiveAttempts {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limits: Readonly<ReceiveAttemptLimits> = RECEIVE_ATTEMPT_LIMITS,
  ) {}

  private static key(queue: string, attemptId: string): string {
    return `${queue}\u0000${attemptId}`;
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
    if (answer.receipts.length === 0 || answer.bytes.length > this.limits.maxBytes) return;
    this.entries.set(key, { ...answer, expiresAtMs: this.clock.now() + this.limits.ttlMs });
    this.bytes += answer.bytes.length;
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

  private drop(key: string, e: Entry): void {
    this.entries.delete(key);
    this.bytes -= e.bytes.length;
  }
}
