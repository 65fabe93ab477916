// Records a queue's cursor read from a log past what one take needed. A publish of hundreds of
// messages is one record batch, and a read can only check a batch whole; a take that ended inside a
// batch made the next take read and check that batch again from its start (on the remote bench,
// reads came to four times the bytes delivered). The cursor reads whole batches instead
// (ReadOptions.wholeBatches) and keeps what it did not use here, per priority level.
import type { LogRecord } from '../../storage/index.js';

export class ReadAhead {
  /** Per level: records in offset order, the unused ones from `next`. */
  private readonly kept = new Map<number, { records: LogRecord[]; next: number }>();

  /** Keeps records[from..] of level for the next take (they were read, not delivered). */
  keep(level: number, records: LogRecord[], from: number): void {
    if (from < records.length) this.kept.set(level, { records, next: from });
    else this.kept.delete(level);
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

  clear(): void {
    this.kept.clear();
  }
}
