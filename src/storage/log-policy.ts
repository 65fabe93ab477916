// Roll and retention decisions, as pure functions over per-segment metadata, shared by the disk
// and memory logs so both delete and roll exactly alike. The rules follow Kafka's.
import type { LogOptions } from './types.js';

export interface SegmentStats {
  baseOffset: number;
  /** Offset after the segment's last record (== baseOffset when empty). */
  nextOffset: number;
  sizeBytes: number;
  /** Largest record timestamp in the segment; -1 when empty. */
  maxTimestampMs: number;
  /** Max timestamp of the segment's first batch (Kafka's "rolling based timestamp"); -1 when empty. */
  rollTimestampMs: number;
}

/** Whether a batch must start a new segment instead of joining the active one. */
export function shouldRoll(
  active: SegmentStats,
  batchBytes: number,
  batchMaxTimestampMs: number,
  batchLastOffset: number,
  options: Pick<LogOptions, 'segmentBytes' | 'segmentMs'>,
): boolean {
  if (active.sizeBytes === 0) return false; // an empty segment takes any batch, however large
  if (active.sizeBytes + batchBytes > options.segmentBytes) return true;
  // Time roll compares record timestamps, not the wall clock, so it is deterministic (Kafka does the same).
  if (batchMaxTimestampMs - active.rollTimestampMs > options.segmentMs) return true;
  // Relative offsets in the indexes are int32.
  return batchLastOffset - active.baseOffset > 0x7fffffff;
}

const isEmptyLast = (segs: SegmentStats[], i: number): boolean => i === segs.length - 1 && segs[i].sizeBytes === 0;

/**
 * How many of the oldest segments retention deletes: first those whose newest record is older than
 * retentionMs, then, of the rest, the oldest ones while the log stays at or above retentionBytes
 * without them. The active segment counts when it is not empty (the caller rolls a new one first).
 */
export function retentionDeleteCount(
  segs: SegmentStats[],
  options: Pick<LogOptions, 'retentionMs' | 'retentionBytes'>,
  nowMs: number,
): number {
  let count = 0;
  if (options.retentionMs !== undefined) {
    while (count < segs.length && !isEmptyLast(segs, count) && nowMs - segs[count].maxTimestampMs > options.retentionMs)
      count++;
  }
  if (options.retentionBytes !== undefined) {
    let total = 0;
    for (let i = count; i < segs.length; i++) total += segs[i].sizeBytes;
    let excess = total - options.retentionBytes;
    while (count < segs.length && !isEmptyLast(segs, count) && excess - segs[count].sizeBytes >= 0) {
      excess -= segs[count].sizeBytes;
      count++;
    }
  }
  return count;
}

/** How many of the oldest segments hold only records below offset. */
export function truncateDeleteCount(segs: SegmentStats[], offset: number): number {
  let count = 0;
  while (count < segs.length && !isEmptyLast(segs, count) && segs[count].nextOffset <= offset) count++;
  return count;
}

/** Index of the segment holding offset: the last one whose baseOffset <= offset (0 if before all). */
export function findSegmentIndex(segs: Array<{ baseOffset: number }>, offset: number): number {
  let lo = 0;
  let hi = segs.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (segs[mid].baseOffset <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}
