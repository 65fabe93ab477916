// A segment's sparse offset index: (relative offset, byte position) pairs in increasing order,
// one per indexIntervalBytes of log. Lookup finds where to start scanning for an offset.
// File format (.index): N x [relativeOffset int32 BE | position int32 BE], as Kafka's.
import { assert } from '../common/index.js';

export const OFFSET_INDEX_ENTRY_BYTES = 8;

export class OffsetIndex {
  private relOffsets: Int32Array;
  private positions: Int32Array;
  count = 0;

  constructor(capacity = 16) {
    this.relOffsets = new Int32Array(capacity);
    this.positions = new Int32Array(capacity);
  }

  get lastRelOffset(): number {
    return this.count === 0 ? -1 : this.relOffsets[this.count - 1];
  }

  get lastPosition(): number {
    return this.count === 0 ? 0 : this.positions[this.count - 1];
  }

  relOffsetAt(i: number): number {
    return this.relOffsets[i];
  }

  positionAt(i: number): number {
    return this.positions[i];
  }

  append(relOffset: number, position: number): void {
    assert(relOffset > this.lastRelOffset && position >= this.lastPosition, 'offset index entries increase');
    if (this.count === this.relOffsets.length) {
      const grow = (a: Int32Array): Int32Array => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.relOffsets = grow(this.relOffsets);
      this.positions = grow(this.positions);
    }
    this.relOffsets[this.count] = relOffset;
    this.positions[this.count] = position;
    this.count++;
  }

  /** Keeps only entries with position < sizeBytes (after a tail truncation). */
  truncateToPosition(sizeBytes: number): void {
    while (this.count > 0 && this.positions[this.count - 1] >= sizeBytes) this.count--;
  }

  /** Index of the last entry with relOffset <= target, or -1. */
  floorEntry(relOffset: number): number {
    return lastAtOrBelow(this.relOffsets, this.count, relOffset);
  }

  /** The last indexed batch start at or before position, or -1. */
  lastPositionAtOrBefore(position: number): number {
    const i = lastAtOrBelow(this.positions, this.count, position);
    return i < 0 ? -1 : this.positions[i];
  }

  /** The first indexed batch start after position, or -1. */
  nextPositionAfter(position: number): number {
    const i = lastAtOrBelow(this.positions, this.count, position) + 1;
    return i < this.count ? this.positions[i] : -1;
  }

  /** Byte position at or before the batch holding relOffset. */
  lookup(relOffset: number): number {
    const i = this.floorEntry(relOffset);
    return i < 0 ? 0 : this.positions[i];
  }

  /** Heap bytes held (for bounding caches). */
  get memoryBytes(): number {
    return this.relOffsets.byteLength * 2;
  }

  toBuffer(): Buffer {
    const buf = Buffer.allocUnsafe(this.count * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      buf.writeInt32BE(this.relOffsets[i], i * 8);
      buf.writeInt32BE(this.positions[i], i * 8 + 4);
    }
    return buf;
  }

  /**
   * Parses an index file, or returns the reason it cannot be trusted (then the caller rebuilds it
   * from the log). Entries must strictly increase and point inside the log.
   */
  static fromBuffer(buf: Buffer, logSizeBytes: number, maxRelOffset: number): OffsetIndex | string {
    if (buf.byteLength % OFFSET_INDEX_ENTRY_BYTES !== 0) return `size ${buf.byteLength} is not a multiple of 8`;
    const n = buf.byteLength / OFFSET_INDEX_ENTRY_BYTES;
    const index = new OffsetIndex(Math.max(16, n));
    let prevRel = -1;
    let prevPos = 0;
    for (let i = 0; i < n; i++) {
      const rel = buf.readInt32BE(i * 8);
      const pos = buf.readInt32BE(i * 8 + 4);
      if (rel <= prevRel || rel > maxRelOffset) return `entry ${i} has relative offset ${rel} out of order or range`;
      if (pos <= prevPos || pos >= logSizeBytes) return `entry ${i} has position ${pos} out of order or beyond the log`;
      index.append(rel, pos);
      prevRel = rel;
      prevPos = pos;
    }
    return index;
  }
}

/** Index of the last of values[0..count) that is <= target (values increase), or -1. */
function lastAtOrBelow(values: Int32Array, count: number, target: number): number {
  let lo = 0;
  let hi = count - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] <= target) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}
