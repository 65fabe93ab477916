// Lease expiry. Messages delivered together share one timer entry per delivery batch (one take())
// instead of one per message, since they share a due time; an extended lease has a timer entry of
// its own, under the message's tracked key. Batch entries are checked lazily when due (a message
// may have been settled, nacked or extended since, which its token and state tell), and a batch
// whose messages are all settled leaves the timer early, so memory follows the leases in flight
// rather than the visibility timeout.
import { assert, ChurnMap } from '../../common/index.js';
import type { Tracked } from './queue-state.js';
import type { TimerHeap } from './timer-heap.js';

interface LeaseBatch {
  timerKey: number;
  /** Tracked keys and the delivery token each lease was given, side by side. */
  keys: number[];
  tokens: number[];
  /** Leases of the batch not yet settled. */
  live: number;
}

/** Timer keys of lease batches: negative, below the keys callers reserve (-1 is the delay timer). */
const FIRST_BATCH_TIMER_KEY = -2;

export class LeaseBook {
  private readonly batches = new ChurnMap<number, LeaseBatch>();
  private nextTimerKey = FIRST_BATCH_TIMER_KEY;
  private open: LeaseBatch | null = null;
  private openDueMs = 0;

  constructor(private readonly timers: TimerHeap<number>) {}

  /** Whether a due timer key is one of this book's batches. */
  static isBatchKey(timerKey: number): boolean {
    return timerKey <= FIRST_BATCH_TIMER_KEY;
  }

  /** Number of batches waiting for their due time (tests: memory follows the leases in flight). */
  get batchCount(): number {
    return this.batches.size;
  }

  /**
   * Asserts that nothing of an earlier lease of t is left: no batch, no timer of its own. A take
   * checks this before it changes the message's state, so a failure leaves the message as it was
   * (visible) rather than in flight with no expiry.
   */
  assertEnded(t: Tracked): void {
    // Constant messages: this runs for every message leased.
    assert(t.leaseBatch === 0, 'a tracked message is in at most one lease batch');
    // The key is also a retry wait's (QueueEngine), over before the message is visible and leased again.
    assert(!this.timers.has(t.key), 'a lease starts with no timer of an earlier one left');
  }

  /** Adds a lease that ends at dueMs; leases added until close() with the same due time share one timer entry. */
  add(t: Tracked, dueMs: number): void {
    this.assertEnded(t);
    if (this.open === null || this.openDueMs !== dueMs) {
      this.close();
      this.open = { timerKey: this.nextTimerKey--, keys: [], tokens: [], live: 0 };
      this.openDueMs = dueMs;
      if (this.nextTimerKey < Number.MIN_SAFE_INTEGER + 1) this.nextTimerKey = FIRST_BATCH_TIMER_KEY;
    }
    const b = this.open;
    b.keys.push(t.key);
    b.tokens.push(t.token);
    b.live++;
    t.leaseBatch = b.timerKey;
  }

  /** Ends the batch being filled: it waits on the timer from now on. */
  close(): void {
    const b = this.open;
    if (b === null) return;
    this.open = null;
    if (b.live === 0) return;
    this.batches.set(b.timerKey, b);
    this.timers.schedule(b.timerKey, this.openDueMs);
  }

  /** The lease now ends at dueMs, on a timer entry of its own (SQS ChangeMessageVisibility). */
  extend(t: Tracked, dueMs: number): void {
    this.release(t);
    this.timers.schedule(t.key, dueMs);
  }

  /**
   * The message's lease (or retry wait) ended other than by its timer: settled, nacked, released,
   * extended, dead-lettered, or expired by the other of two timers due at once. Its batch entry and
   * the timer under its own key (an extension's, or a retry wait's) go: one left behind would fire
   * during a later lease or wait of the message.
   */
  release(t: Tracked): void {
    this.timers.cancel(t.key);
    const key = t.leaseBatch;
    if (key === 0) return;
    t.leaseBatch = 0;
    const b = this.open !== null && this.open.timerKey === key ? this.open : this.batches.get(key);
    if (b === undefined || --b.live > 0) return;
    if (b === this.open) return; // close() drops it
    this.batches.delete(key);
    this.timers.cancel(key);
  }

  /** Hands out every (trackedKey, token) of a due batch; the caller checks each is still that lease. */
  takeDue(timerKey: number, visit: (trackedKey: number, token: number) => void): void {
    const b = this.batches.get(timerKey);
    if (b === undefined) return;
    this.batches.delete(timerKey);
    for (let i = 0; i < b.keys.length; i++) visit(b.keys[i], b.tokens[i]);
  }

  /** Forgets every batch (purge: everything tracked was settled). */
  clear(): void {
    this.close();
    for (const key of this.batches.keys()) this.timers.cancel(key);
    this.batches.clear();
  }
}
