// Reading batches out of one segment: index lookup, then positioned reads of bounded buffers.
// Every batch handed out has passed its CRC check, so a corrupt batch is reported, never served.
import { WharfError } from '../common/index.js';
import { readAt } from './file-io.js';
import type { OffsetIndex } from './offset-index.js';
import { BATCH_HEADER_BYTES, batchCrc, headerProblem, readBatchHeader } from './record-batch.js';
import type { Segment } from './segment.js';

/** Called per batch (buf holds it at pos); returns false to stop. */
export type BatchVisitor = (buf: Buffer, pos: number, sizeBytes: number, maxTimestampMs: number) => boolean;

export interface ReadBudget {
  /** Bytes of batches still wanted; the first batch is taken even when larger. */
  bytesLeft: number;
  batchesTaken: number;
  stopped: boolean;
  /**
   * The reader reads again for more (ReadOptions.wholeBatches): once it has a batch, the read may
   * stop where it cannot tell without another read whether the next batch fits.
   */
  mayStopEarly?: boolean;
}

function corrupt(seg: Segment, position: number, reason: string): WharfError {
  return new WharfError(
    'CORRUPT_DATA',
    `corrupt record batch in ${seg.logPath} at byte ${position}: ${reason}. It is not served; ` +
      'restore the partition from a backup or move the consumer past this offset.',
    { details: { file: seg.logPath, position, reason } },
  );
}

/** Longest read alignedReadBytes stretches to for a first batch larger than asked (maxReadBytes). */
const MAX_STRETCH_BYTES = 8 * 1024 * 1024;

/**
 * How many bytes to read at pos so the read ends where an indexed batch starts: a read that ends
 * inside a batch is read again by the next one (on the remote queue bench, reads came to 2.5 times
 * the bytes delivered, and every read is a fresh buffer for the garbage collector to account for).
 * `want` is what the budget and the chunk size allow, `bytesLeft` the budget.
 * - A boundary within want: read up to it.
 * - After a batch (`taken`): a plain read reads want, as it always has (it fills its budget
 *   exactly); a whole-batches read (`mayStopEarly`) reads the next stretch if it fits the budget,
 *   else returns 0 (stop here: the reader reads again).
 * - A first batch larger than want: read it whole up to the next indexed start if that is at most
 *   8 MiB away; else (no index entry ahead, or a sparse index) read want, and the caller reads the
 *   batch again at its full size.
 */
export function alignedReadBytes(
  index: OffsetIndex,
  pos: number,
  want: number,
  limit: number,
  bytesLeft: number,
  taken: boolean,
  mayStopEarly: boolean,
): number {
  const end = pos + want;
  if (end >= limit) return want; // to the end of the data: whole batches already
  const boundary = index.lastPositionAtOrBefore(end);
  if (boundary > pos) return boundary - pos;
  const indexed = index.nextPositionAfter(pos);
  const hasIndexed = indexed > pos && indexed < limit;
  if (taken) {
    if (!mayStopEarly) return want;
    const next = hasIndexed ? indexed : limit;
    return next - pos > bytesLeft ? 0 : next - pos;
  }
  return hasIndexed && indexed - pos <= MAX_STRETCH_BYTES ? indexed - pos : want;
}

/**
 * Visits the readable batches of seg that hold offsets >= fromOffset, starting at startPosition,
 * where the batch starting at startOffset lies (from an index lookup), read in buffers of at most min(budget.bytesLeft, maxChunkBytes) bytes
 * (more only for a single larger batch), ending where an indexed batch starts when they can
 * (alignedReadBytes, with the segment's offset index).
 * The caller holds a reference on seg (acquire/release).
 */
export async function visitSegmentBatches(
  seg: Segment,
  fd: number,
  startPosition: number,
  startOffset: number,
  fromOffset: number,
  budget: ReadBudget,
  maxChunkBytes: number,
  visit: BatchVisitor,
  index: OffsetIndex,
): Promise<void> {
  const limit = seg.readableBytes;
  let pos = startPosition;
  // baseOffset lies outside the CRC, so batches must also chain offset to offset.
  let expectedOffset = startOffset;
  let nextWant = 0;
  while (pos < limit && !budget.stopped) {
    let want = Math.min(limit - pos, Math.max(Math.min(budget.bytesLeft, maxChunkBytes), BATCH_HEADER_BYTES, nextWant));
    if (nextWant === 0) {
      want = alignedReadBytes(
        index,
        pos,
        want,
        limit,
        budget.bytesLeft,
        budget.batchesTaken > 0,
        budget.mayStopEarly === true,
      );
      if (want === 0) {
        budget.stopped = true;
        break;
      }
    }
    const buf = await readAt(fd, pos, want);
    nextWant = 0;
    let p = 0;
    while (p + BATCH_HEADER_BYTES <= buf.length) {
      const at = pos + p;
      const header = readBatchHeader(buf, p);
      const problem = headerProblem(header);
      if (problem !== null) throw corrupt(seg, at, problem);
      if (at + header.sizeBytes > limit)
        throw corrupt(seg, at, `batch of ${header.sizeBytes} bytes runs past the end of the data`);
      if (header.baseOffset !== expectedOffset)
        throw corrupt(seg, at, `batch starts at offset ${header.baseOffset}, expected ${expectedOffset}`);
      const lastOffset = header.baseOffset + header.lastOffsetDelta;
      if (lastOffset < fromOffset) {
        p += header.sizeBytes; // before the wanted offset: skipped by its header alone
        expectedOffset = lastOffset + 1;
        continue;
      }
      if (budget.batchesTaken > 0 && header.sizeBytes > budget.bytesLeft) {
        budget.stopped = true;
        break;
      }
      if (p + header.sizeBytes > buf.length) {
        if (p === 0) nextWant = header.sizeBytes; // a single batch larger than the buffer
        break;
      }
      const crc = batchCrc(buf, p, header.sizeBytes);
      if (crc.stored !== crc.computed)
        throw corrupt(seg, at, `CRC mismatch (stored ${crc.stored}, computed ${crc.computed})`);
      budget.batchesTaken++;
      budget.bytesLeft -= header.sizeBytes;
      p += header.sizeBytes;
      expectedOffset = lastOffset + 1;
      if (!visit(buf, p - header.sizeBytes, header.sizeBytes, header.maxTimestampMs) || budget.bytesLeft <= 0) {
        budget.stopped = true;
        break;
      }
    }
    if (p === 0 && nextWant === 0 && !budget.stopped) throw corrupt(seg, pos, 'unreadable batch header');
    pos += p;
  }
}
