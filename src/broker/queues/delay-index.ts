// Which delayed messages fall due next, in bounded memory.
//
// Delayed publishes are appended to the queue's delay log in arrival order. This index keeps only
// the `capacity` earliest-due entries, sorted. Invariant: every pending delayed message that is not
// held here is due no earlier than the latest entry held here. To keep it after pops made room, the
// index remembers the earliest due time among the entries it left out and leaves out every later
// offer due at or after it: held, such an offer would keep the index from running empty, and the
// left-out message would wait until it fell due. When entries had to be left out (`complete` false)
// and the index runs empty, the engine rescans the delay log from its start offset (skipping settled
// offsets) to refill it. Memory: capacity entries, whatever the backlog; cost: one scan of the delay
// log per `capacity` due messages when the backlog exceeds capacity.

export interface DelayEntry {
  dueMs: number;
  offset: number;
}

export class DelayIndex {
  private entries: DelayEntry[] = [];
  /** False once a pending entry was left out: the log must be rescanned when this runs empty. */
  complete = true;
  /** Earliest due time among the entries left out since the last reset; Infinity when none were. */
  private leftOutDueMs = Infinity;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.length;
  }

  /** Adds a pending delayed message (or leaves it out, keeping the invariant). */
  offer(dueMs: number, offset: number): void {
    const e = this.entries;
    if (dueMs >= this.leftOutDueMs) return;
    if (e.length >= this.capacity) {
      if (dueMs >= e[e.length - 1].dueMs) {
        this.leaveOut(dueMs);
        return;
      }
      this.leaveOut(e.pop()!.dueMs);
    }
    // Binary search: insert after entries due at the same time, so arrival order is kept.
    let lo = 0;
    let hi = e.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (e[mid].dueMs <= dueMs) lo = mid + 1;
      else hi = mid;
    }
    e.splice(lo, 0, { dueMs, offset });
  }

  /** Earliest due time held, Infinity when empty. */
  peekDueMs(): number {
    return this.entries.length > 0 ? this.entries[0].dueMs : Infinity;
  }

  /** Removes and returns the entries due at nowMs, earliest first (at most max); offer() puts one back. */
  popDueEntries(nowMs: number, max = Infinity): DelayEntry[] {
    let n = 0;
    while (n < this.entries.length && n < max && this.entries[n].dueMs <= nowMs) n++;
    return this.entries.splice(0, n);
  }

  /** True when entries were left out and none are held: the caller rescans the log. */
  needsRescan(): boolean {
    return !this.complete && this.entries.length === 0;
  }

  /** Starts a rescan: forget everything; offers refill it. */
  reset(): void {
    this.entries = [];
    this.complete = true;
    this.leftOutDueMs = Infinity;
  }

  /**
   * Forgets everything and holds nothing until a rescan (a scan that failed part way: the entries it
   * did not reach may be due before those it held). Every offer is left out meanwhile; the rescan
   * finds them in the log.
   */
  invalidate(): void {
    this.entries = [];
    this.complete = false;
    this.leftOutDueMs = -Infinity;
  }

  private leaveOut(dueMs: number): void {
    this.complete = false;
    if (dueMs < this.leftOutDueMs) this.leftOutDueMs = dueMs;
  }
}
