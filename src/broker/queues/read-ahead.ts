// Records a queue's cursor read from a log past what one take needed. A publish of hundreds of
// messages is one record batch, and a read can only check a batch whole; a take that ended inside a
// batch made the next take read and check that batch again from its start (on the remote bench,
// reads came to four times the bytes delivered). The cursor reads whole batches instead
// (ReadOptions.wholeBatches) and keeps what it did not use here, per priority level. What is kept
// holds its read buffer (up to readMaxBytes and one batch), so it is let go after one to two
// READ_AHEAD_KEEP_MS unused (one timer per queue looks every KEEP_MS while anything is kept):
// a queue whose consumer stopped does not hold a read's worth of memory for good.
import type { Clock, TimerHandle } from '../../common/index.js';
import type { LogRecord } from '../../storage/index.js';

/** How long kept records wait for the next take before they are let go. */
export const READ_AHEAD_KEEP_MS = 1_000;

interface Kept {
  records: LogRecord[];
  /** The first record not yet used. */
  next: number;
  keptAtMs: number;
}

export class ReadAhead {
  private readonly kept = new Map<number, Kept>();
  private sweep: TimerHandle | null = null;

  constructor(private readonly clock: Clock) {}

  /** Keeps records[from..] of level for the next take (they were read, not delivered). */
  keep(level: number, records: LogRecord[], from: number): void {
    if (from >= records.length) {
      this.kept.delete(level);
      return;
    }
    this.kept.set(level, { records, next: from, keptAtMs: this.clock.now() });
    if (this.sweep === null) this.armSweep();
  }

  /**
   * The kept records of level from `offset` on, or null when none start exactly there (the cursor
   * moved past them, or jumped a settled range they do not cover): the caller reads the log.
   */
  take(level: number, offset: number): LogRecord[] | null {
    const k = this.kept.get(level);
    if (k === undefined) return null;
    this.kept.delete(level);
    const { records } = k;
    let i = k.next;
    while (i < records.length && records[i].offset < offset) i++;
    if (i === records.length || records[i].offset !== offset) return null;
    return i === 0 ? records : records.slice(i);
  }

  /** Drops what waited KEEP_MS or more; looks again later while anything is left. */
  private letGo(): void {
    this.sweep = null;
    const now = this.clock.now();
    for (const [level, k] of this.kept) if (now - k.keptAtMs >= READ_AHEAD_KEEP_MS) this.kept.delete(level);
    if (this.kept.size > 0) this.armSweep();
  }

  private armSweep(): void {
    this.sweep = this.clock.setTimer(READ_AHEAD_KEEP_MS, () => this.letGo());
  }

  get levelsKept(): number {
    return this.kept.size;
  }

  clear(): void {
    this.kept.clear();
    this.sweep?.cancel();
    this.sweep = null;
  }
}
