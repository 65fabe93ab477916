// The memory implementation of PartitionLog (tests, `inMemory: true`). It stores the same encoded
// RecordBatch v2 buffers as the disk log, in segments, and shares the roll and retention rules,
// so both implementations behave alike down to which records retention drops.
import { WharfError, readInt64 } from '../common/index.js';
import {
  findSegmentIndex,
  retentionDeleteCount,
  shouldRoll,
  truncateDeleteCount,
  type SegmentStats,
} from './log-policy.js';
import { decodeRecordsInto, encodeBatch } from './record-batch.js';
import type {
  AppendResult,
  BatchProducerInfo,
  LogOptions,
  LogRecord,
  PartitionLog,
  ReadOptions,
  RecordInput,
} from './types.js';
import {
  validateOffset,
  validateProducer,
  validateReadOptions,
  validateRecords,
  validateTimestamp,
} from './validate.js';

interface MemorySegment extends SegmentStats {
  batches: Buffer[];
}

function newSegment(baseOffset: number): MemorySegment {
  return { baseOffset, nextOffset: baseOffset, sizeBytes: 0, maxTimestampMs: -1, rollTimestampMs: -1, batches: [] };
}

/** What survives close/reopen of a memory log: kept by the memory storage per path. */
export class MemoryLogData {
  segments: MemorySegment[] = [newSegment(0)];
}

const batchBase = (b: Buffer): number => readInt64(b, 0);
const batchLast = (b: Buffer): number => readInt64(b, 0) + b.readInt32BE(23);
const batchMaxTs = (b: Buffer): number => readInt64(b, 35);

export class MemoryLog implements PartitionLog {
  private closed = false;

  constructor(
    private readonly data: MemoryLogData,
    readonly options: LogOptions,
    private readonly onClose: () => void = () => undefined,
  ) {}

  private get segments(): MemorySegment[] {
    return this.data.segments;
  }

  private get active(): MemorySegment {
    return this.segments[this.segments.length - 1];
  }

  get startOffset(): number {
    return this.segments[0].baseOffset;
  }

  get endOffset(): number {
    return this.active.nextOffset;
  }

  get sizeBytes(): number {
    return this.segments.reduce((sum, s) => sum + s.sizeBytes, 0);
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.baseOffset);
  }

  private checkOpen(): void {
    if (this.closed) throw new WharfError('CLOSED', 'the memory log is closed');
  }

  append(records: RecordInput[], producer?: BatchProducerInfo): Promise<AppendResult> {
    try {
      this.checkOpen();
      validateRecords(records);
      validateProducer(producer);
      const baseOffset = this.endOffset;
      const buf = encodeBatch({ baseOffset, records, producer });
      const lastOffset = baseOffset + records.length - 1;
      const maxTs = batchMaxTs(buf);
      let seg = this.active;
      if (shouldRoll(seg, buf.length, maxTs, lastOffset, this.options)) {
        seg = newSegment(baseOffset);
        this.segments.push(seg);
      }
      if (seg.sizeBytes === 0) seg.rollTimestampMs = maxTs;
      seg.batches.push(buf);
      seg.sizeBytes += buf.length;
      seg.nextOffset = lastOffset + 1;
      seg.maxTimestampMs = Math.max(seg.maxTimestampMs, maxTs);
      return Promise.resolve({ baseOffset, lastOffset });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Visits batches holding offsets >= fromOffset with the disk log's budget rule. */
  private visit(fromOffset: number, maxBytes: number, fn: (b: Buffer) => boolean): void {
    let bytesLeft = maxBytes;
    let taken = 0;
    const offset = Math.max(fromOffset, this.startOffset);
    for (let s = findSegmentIndex(this.segments, offset); s < this.segments.length; s++) {
      const batches = this.segments[s].batches;
      for (let i = findBatchIndex(batches, offset); i < batches.length; i++) {
        const b = batches[i];
        if (batchLast(b) < offset) continue;
        if (taken > 0 && b.length > bytesLeft) return;
        taken++;
        bytesLeft -= b.length;
        if (!fn(b) || bytesLeft <= 0) return;
      }
    }
  }

  read(fromOffset: number, options: ReadOptions): Promise<LogRecord[]> {
    try {
      this.checkOpen();
      validateOffset(fromOffset, 'fromOffset');
      const { maxBytes, maxRecords } = validateReadOptions(options);
      const out: LogRecord[] = [];
      this.visit(fromOffset, maxBytes, (b) => {
        decodeRecordsInto(b, 0, fromOffset, out, options.wholeBatches === true ? Number.MAX_SAFE_INTEGER : maxRecords);
        return out.length < maxRecords;
      });
      return Promise.resolve(out);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readBatches(fromOffset: number, options: ReadOptions): Promise<Uint8Array[]> {
    try {
      this.checkOpen();
      validateOffset(fromOffset, 'fromOffset');
      const { maxBytes } = validateReadOptions(options);
      const out: Uint8Array[] = [];
      this.visit(fromOffset, maxBytes, (b) => out.push(b) > 0);
      return Promise.resolve(out);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  offsetForTimestamp(timestampMs: number): Promise<number> {
    try {
      this.checkOpen();
      validateTimestamp(timestampMs, 'timestampMs');
      for (const seg of this.segments) {
        if (seg.maxTimestampMs < timestampMs) continue;
        for (const b of seg.batches) {
          if (batchMaxTs(b) < timestampMs) continue;
          const records: LogRecord[] = [];
          decodeRecordsInto(b, 0, 0, records, Number.MAX_SAFE_INTEGER);
          return Promise.resolve(records.find((r) => r.timestampMs >= timestampMs)!.offset);
        }
      }
      return Promise.resolve(this.endOffset);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  applyRetention(nowMs: number): Promise<number> {
    try {
      this.checkOpen();
      validateTimestamp(nowMs, 'nowMs');
      return Promise.resolve(this.deleteOldest(retentionDeleteCount(this.segments, this.options, nowMs)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  truncateBefore(offset: number): Promise<number> {
    try {
      this.checkOpen();
      validateOffset(offset, 'offset');
      return Promise.resolve(this.deleteOldest(truncateDeleteCount(this.segments, offset)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private deleteOldest(count: number): number {
    if (count === this.segments.length) this.segments.push(newSegment(this.endOffset));
    this.segments.splice(0, count);
    return count;
  }

  flush(): Promise<void> {
    return this.closed ? Promise.reject(new WharfError('CLOSED', 'the memory log is closed')) : Promise.resolve();
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.onClose();
    }
    return Promise.resolve();
  }
}

/** Index of the last batch whose base offset <= offset (0 when offset precedes all). */
function findBatchIndex(batches: Buffer[], offset: number): number {
  let lo = 0;
  let hi = batches.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (batchBase(batches[mid]) <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}
