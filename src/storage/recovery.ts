// Recovery of a segment when a log opens. The index files are the recovery point: they are only
// written for data already fsynced (at roll and close), so everything after the last index entry
// is scanned batch by batch with CRC checks, and the index is extended as it goes. A bad batch at
// the end of the last segment with nothing valid after it is a torn write and is truncated; any
// other bad batch is corruption and fails the open with CORRUPT_DATA naming file and byte.
import { WharfError, readInt64 } from '../common/index.js';
import { fdatasync, fstatSize, ftruncate, readAt } from './file-io.js';
import { BATCH_HEADER_BYTES, BATCH_MAGIC, batchCrc, headerProblem, readBatchHeader } from './record-batch.js';
import { emptyIndexes, type Segment } from './segment.js';

const SCAN_CHUNK_BYTES = 1024 * 1024;

export interface RecoveryOptions {
  isLast: boolean;
  /** Ignore index files and verify every batch of the segment. */
  fullScan: boolean;
}

export interface RecoveryReport {
  /** Bytes cut from a torn tail (0 when none). */
  truncatedBytes: number;
  /** Why the index files were rebuilt, or null when they were reused. */
  indexRebuildReason: string | null;
  /** Whether the in-memory index gained entries the files lack. */
  indexChanged: boolean;
}

interface ScanProblem {
  position: number;
  reason: string;
}

/** Recovers seg in place: indexes, sizes and offsets set, torn tail cut. Leaves seg.fd open. */
export async function recoverSegment(seg: Segment, options: RecoveryOptions): Promise<RecoveryReport> {
  const fd = await seg.acquire(options.isLast);
  try {
    let sizeBytes = await fstatSize(fd);
    const loaded = options.fullScan ? 'full scan requested' : await seg.readIndexFiles(sizeBytes);
    let rebuildReason = typeof loaded === 'string' ? loaded : null;
    const entriesBefore = typeof loaded === 'string' ? 0 : loaded.offsets.count;
    let start = seg.resumeFromIndexes(typeof loaded === 'string' ? emptyIndexes() : loaded);
    let problem = await scan(fd, seg, start, sizeBytes);
    if (problem && start > 0 && problem.position === start) {
      // The last index entry points at no valid batch: the index is stale, rebuild from the start.
      rebuildReason = `index entry at byte ${start} does not lead to valid batches (${problem.reason})`;
      start = seg.resumeFromIndexes(emptyIndexes());
      problem = await scan(fd, seg, 0, sizeBytes);
    }
    let truncatedBytes = 0;
    if (problem) {
      const validAfter = await findValidBatchAfter(fd, problem.position, sizeBytes, seg.nextOffset);
      if (!options.isLast || validAfter !== null) {
        const where = validAfter !== null ? `; a valid batch follows at byte ${validAfter}` : ' in a sealed segment';
        throw new WharfError(
          'CORRUPT_DATA',
          `corrupt record batch in ${seg.logPath} at byte ${problem.position}: ${problem.reason}${where}. ` +
            'The data there cannot be trusted; restore the partition from a replica or backup, ' +
            'or delete the segment files from this one on to drop its records.',
          { details: { file: seg.logPath, position: problem.position, reason: problem.reason } },
        );
      }
      // A torn write: the crash came before the fsync that would have acknowledged it.
      truncatedBytes = sizeBytes - problem.position;
      await ftruncate(fd, problem.position);
      await fdatasync(fd);
      sizeBytes = problem.position;
      seg.indexes!.offsets.truncateToPosition(sizeBytes);
      seg.indexes!.times.truncateToCount(seg.indexes!.offsets.count);
    }
    seg.markAllReadable();
    if (options.isLast && seg.sizeBytes > 0) {
      const head = await readAt(fd, 0, BATCH_HEADER_BYTES);
      seg.rollTimestampMs = readInt64(head, 35);
    }
    return {
      truncatedBytes,
      indexRebuildReason: rebuildReason,
      indexChanged: rebuildReason !== null || seg.indexes!.offsets.count !== entriesBefore,
    };
  } finally {
    seg.release();
  }
}

/** Notes every valid batch from start to end into seg; returns the first problem, if any. */
async function scan(fd: number, seg: Segment, start: number, end: number): Promise<ScanProblem | null> {
  let pos = start;
  while (pos < end) {
    const chunk = await readAt(fd, pos, Math.min(SCAN_CHUNK_BYTES, end - pos));
    let p = 0;
    while (p < chunk.length) {
      const at = pos + p;
      if (chunk.length - p < BATCH_HEADER_BYTES) {
        if (pos + chunk.length < end) break; // the header continues in the next chunk
        return { position: at, reason: `${end - at} trailing bytes are less than a batch header` };
      }
      const header = readBatchHeader(chunk, p);
      const bad = headerProblem(header);
      if (bad !== null) return { position: at, reason: bad };
      if (at + header.sizeBytes > end)
        return { position: at, reason: `batch of ${header.sizeBytes} bytes is cut off by the end of the file` };
      if (header.baseOffset !== seg.nextOffset)
        return { position: at, reason: `batch starts at offset ${header.baseOffset}, expected ${seg.nextOffset}` };
      let batchBuf = chunk;
      let bp = p;
      if (p + header.sizeBytes > chunk.length) {
        if (p > 0) break; // re-read from this batch's start
        batchBuf = await readAt(fd, at, header.sizeBytes); // one batch larger than the chunk
        bp = 0;
      }
      const crc = batchCrc(batchBuf, bp, header.sizeBytes);
      if (crc.stored !== crc.computed)
        return { position: at, reason: `CRC mismatch (stored ${crc.stored}, computed ${crc.computed})` };
      seg.noteBatch(
        header.baseOffset,
        header.baseOffset + header.lastOffsetDelta,
        at,
        header.sizeBytes,
        header.maxTimestampMs,
      );
      p += header.sizeBytes;
      if (batchBuf !== chunk) break;
    }
    if (p === 0) return { position: pos, reason: 'unreadable batch' };
    pos += p;
  }
  return null;
}

/**
 * The position of the first fully valid batch after a bad one, or null. A valid batch after the
 * bad one proves the damage is in the middle (corruption), not a torn tail. It must carry an
 * offset at or above where the log stopped, so stale or random bytes do not count.
 */
export async function findValidBatchAfter(
  fd: number,
  badPosition: number,
  end: number,
  minOffset: number,
): Promise<number | null> {
  for (let pos = badPosition + 1; pos + BATCH_HEADER_BYTES <= end;) {
    const chunk = await readAt(fd, pos, Math.min(SCAN_CHUNK_BYTES, end - pos));
    const lastCandidate = chunk.length - BATCH_HEADER_BYTES;
    for (let p = 0; p <= lastCandidate; p++) {
      if (chunk[p + 16] !== BATCH_MAGIC) continue;
      const header = readBatchHeader(chunk, p);
      if (headerProblem(header) !== null || pos + p + header.sizeBytes > end) continue;
      if (header.baseOffset < minOffset || header.baseOffset > minOffset + 0x7fffffff) continue;
      const whole =
        p + header.sizeBytes <= chunk.length
          ? chunk.subarray(p, p + header.sizeBytes)
          : await readAt(fd, pos + p, header.sizeBytes);
      const crc = batchCrc(whole, 0, header.sizeBytes);
      if (crc.stored === crc.computed) return pos + p;
    }
    pos += Math.max(1, lastCandidate + 1);
  }
  return null;
}
