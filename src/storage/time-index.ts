// A segment's sparse time index. It has exactly one entry per offset-index entry, at the same
// relative offset, holding the largest record timestamp of every record *before* that offset in
// the segment. So for a target time T, the records before the last entry with timestamp < T are
// all older than T, and a scan for the first record >= T may start at that entry's offset.
// File format (.timeindex): N x [timestamp int64 BE | relativeOffset int32 BE] (Kafka's layout).
import { assert, readInt64, writeInt64 } from '../common/index.js';
import type { OffsetIndex } from './offset-index.js';

export const TIME_INDEX_ENTRY_BYTES = 12;

export class TimeIndex {
  private timestamps: Float64Array;
  private relOffsets: Int32Array;
  count = 0;

  constructor(capacity = 16) {
    this.timestamps = new Float64Array(capacity);
    this.relOffsets = new Int32Array(capacity);
  }

  /** Largest timestamp before the last entry's offset; -1 when empty. */
  get lastTimestampMs(): number {
    return this.count === 0 ? -1 : this.timestamps[this.count - 1];
  }

  append(timestampMs: number, relOffset: number): void {
    assert(timestampMs >= this.lastTimestampMs, 'time index timestamps never decrease');
    if (this.count === this.timestamps.length) {
      const ts = new Float64Array(this.count * 2);
      ts.set(this.timestamps);
      const ro = new Int32Array(this.count * 2);
      ro.set(this.relOffsets);
      this.timestamps = ts;
      this.relOffsets = ro;
    }
    this.timestamps[this.count] = timestampMs;
    this.relOffsets[this.count] = relOffset;
    this.count++;
  }

  truncateToCount(count: number): void {
    this.count = Math.min(this.count, count);
  }

  /** Relative offset where a scan for the first record with timestamp >= T may start. */
  lookup(timestampMs: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamps[mid] < timestampMs) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? 0 : this.relOffsets[found];
  }

  get memoryBytes(): number {
    return this.timestamps.byteLength + this.relOffsets.byteLength;
  }

  toBuffer(): Buffer {
    const buf = Buffer.allocUnsafe(this.count * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      writeInt64(buf, i * 12, this.timestamps[i]);
      buf.writeInt32BE(this.relOffsets[i], i * 12 + 8);
    }
    return buf;
  }

  /** Parses a time index file that must pair entry for entry with offsets; else the reason not. */
  static fromBuffer(buf: Buffer, offsets: OffsetIndex): TimeIndex | string {
    if (buf.byteLength % TIME_INDEX_ENTRY_BYTES !== 0) return `size ${buf.byteLength} is not a multiple of 12`;
    const n = buf.byteLength / TIME_INDEX_ENTRY_BYTES;
    if (n !== offsets.count) return `${n} entries, the offset index has ${offsets.count}`;
    const index = new TimeIndex(Math.max(16, n));
    for (let i = 0; i < n; i++) {
      const ts = readInt64(buf, i * 12);
      const rel = buf.readInt32BE(i * 12 + 8);
      if (rel !== offsets.relOffsetAt(i))
        return `entry ${i} is at relative offset ${rel}, not ${offsets.relOffsetAt(i)}`;
      if (ts < index.lastTimestampMs || ts < -1) return `entry ${i} has timestamp ${ts} out of order`;
      index.append(ts, rel);
    }
    return index;
  }
}
