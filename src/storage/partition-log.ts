// The disk implementation of PartitionLog: a directory of segments, the last one active. Appends
// are encoded and given offsets synchronously, then written by group-commit rounds (one writev
// per round per segment: through an O_DSYNC fd under fsync 'always' on Linux, else followed by an
// fdatasync under 'always'). Reads go through the sparse indexes to positioned
// reads of bounded buffers; only per-segment metadata and a bounded set of indexes stay in memory.
import { assert, WharfError, readInt64 } from '../common/index.js';
import { durableWritesFor, fdatasync, fsyncDir, writevAll } from './file-io.js';
import { syncerFor, type IntervalSyncer } from './fsync-timer.js';
import { GroupCommitter, type CommitItem } from './group-commit.js';
import { findSegmentIndex, retentionDeleteCount, shouldRoll, truncateDeleteCount } from './log-policy.js';
import { decodeRecordsInto, encodeBatch } from './record-batch.js';
import { openSegments } from './log-open.js';
import { Preallocation } from './preallocation.js';
import { emptyIndexes, Segment, type SegmentIndexes } from './segment.js';
import { appendSlabPool, type Slab } from './slab-pool.js';
import { visitSegmentBatches, type BatchVisitor, type ReadBudget } from './segment-reader.js';
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

export interface DiskLogExtras {
  /** Verify every batch of every segment at open, ignoring index files (slow; an fsck). */
  fullRecoveryScan?: boolean;
  /** Older segments whose fd and indexes stay cached (the active one always is). */
  maxResidentSegments?: number;
  /** Called once after close() (the storage forgets the log). */
  onClose?: () => void;
  /** Test hook: awaited before each fdatasync of a segment file. */
  beforeSync?: (segmentFile: string) => Promise<void> | void;
}

interface PendingBatch extends CommitItem {
  seg: Segment;
  buf: Buffer;
  /** Pooled memory behind buf, returned once the batch is written. */
  slab: Slab | null;
  position: number;
  lastOffset: number;
  maxTimestampMs: number;
}

const TIMESTAMP_SCAN_CHUNK_BYTES = 1024 * 1024;
const NOOP = (): void => undefined;
const READ_CHUNK_MIN_BYTES = 64 * 1024;
const READ_CHUNK_BYTES_PER_RECORD = 4096;

export class DiskLog implements PartitionLog {
  /** fdatasync calls on segment files (tests check group commit with it). */
  fsyncCount = 0;
  private readonly committer = new GroupCommitter<PendingBatch>((items) => this.writeRound(items));
  private readonly syncer: IntervalSyncer | null;
  /** fsync 'always' where O_DSYNC serves (file-io.ts): segments write through O_DSYNC fds. */
  private readonly durableWrites: boolean;
  /** Rolled-away segments waiting for their last writes, then fsync and index files. */
  private readonly sealQueue: Segment[] = [];
  /** Older segments holding an fd and indexes, least recently used first. */
  private readonly resident = new Set<Segment>();
  private closed = false;
  private failure: WharfError | null = null;

  private constructor(
    readonly dir: string,
    readonly options: LogOptions,
    private readonly segments: Segment[],
    private readonly extras: DiskLogExtras,
  ) {
    this.durableWrites = durableWritesFor(options.fsync);
    this.syncer = syncerFor(
      options,
      () => this.syncActive(),
      (err) => this.fail(err),
    );
  }

  static async open(dir: string, options: LogOptions, extras: DiskLogExtras = {}): Promise<DiskLog> {
    const segments = await openSegments(
      dir,
      options.indexIntervalBytes,
      extras.fullRecoveryScan ?? false,
      durableWritesFor(options.fsync),
    );
    return new DiskLog(dir, options, segments, extras);
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1];
  }

  get startOffset(): number {
    return this.segments[0].baseOffset;
  }

  get endOffset(): number {
    return this.active.nextOffset;
  }

  get sizeBytes(): number {
    let total = 0;
    for (const seg of this.segments) total += seg.writtenBytes;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Segments holding an fd or indexes in memory: bounded by maxResidentSegments + the active one + any awaiting sealing. */
  get cachedSegmentCount(): number {
    return this.segments.filter((s) => s.indexes !== null || s.fd !== null).length;
  }

  /** Base offsets of the segments, oldest first (tests and tools). */
  get segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.baseOffset);
  }

  private checkOpen(): void {
    if (this.closed) throw new WharfError('CLOSED', `the log at ${this.dir} is closed`);
  }

  append(records: RecordInput[], producer?: BatchProducerInfo): Promise<AppendResult> {
    let item: PendingBatch;
    let result: AppendResult;
    try {
      this.checkOpen();
      if (this.failure) throw this.failure;
      validateRecords(records);
      validateProducer(producer);
      const baseOffset = this.endOffset;
      let slab: Slab | null = null;
      const buf = encodeBatch({ baseOffset, records, producer }, (size) => {
        const lease = appendSlabPool.take(size);
        slab = lease.slab;
        return lease.buf;
      });
      const lastOffset = baseOffset + records.length - 1;
      const maxTimestampMs = readInt64(buf, 35);
      const seg = this.segmentFor(buf.length, maxTimestampMs, lastOffset);
      const position = seg.sizeBytes;
      seg.noteBatch(baseOffset, lastOffset, position, buf.length, maxTimestampMs);
      result = { baseOffset, lastOffset };
      // Built whole, settled through the promise below (an object spread per append was a measurable cost).
      item = { seg, buf, slab, position, lastOffset, maxTimestampMs, resolve: NOOP, reject: NOOP };
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      item.resolve = () => resolve(result);
      item.reject = reject;
      this.committer.submit(item);
    });
  }

  private segmentFor(batchBytes: number, batchMaxTimestampMs: number, batchLastOffset: number): Segment {
    const active = this.active;
    if (!shouldRoll(active, batchBytes, batchMaxTimestampMs, batchLastOffset, this.options)) return active;
    const next = new Segment(this.dir, active.nextOffset, this.options.indexIntervalBytes, this.durableWrites);
    next.indexes = emptyIndexes();
    this.sealQueue.push(active);
    this.segments.push(next);
    return next;
  }

  /** One group-commit round: per segment, one writev then (fsync 'always') one fdatasync. */
  private async writeRound(items: PendingBatch[]): Promise<void> {
    try {
      await this.writeAndSync(items);
    } finally {
      for (const item of items) appendSlabPool.release(item.slab);
    }
    this.syncer?.markDirty();
  }

  private async writeAndSync(items: PendingBatch[]): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      for (let i = 0; i < items.length;) {
        const seg = items[i].seg;
        const buffers: Buffer[] = [];
        let j = i;
        while (j < items.length && items[j].seg === seg) buffers.push(items[j++].buf);
        await this.sealFinished(); // an older segment is durable before a newer one gets data
        if (seg.fd === null) await this.createSegmentFile(seg);
        assert(items[i].position === seg.writtenBytes, 'rounds write each segment contiguously');
        if (seg.durableWrites && this.extras.beforeSync) await this.extras.beforeSync(seg.logPath);
        const last = items[j - 1];
        const end = last.position + last.buf.length;
        if (seg.durableWrites) {
          seg.preallocation ??= new Preallocation(seg.fd!, items[i].position, this.options.segmentBytes);
          await seg.preallocation.write(buffers, items[i].position, end - items[i].position);
        } else await writevAll(seg.fd!, buffers, items[i].position);
        seg.writtenBytes = end;
        if (seg.durableWrites) this.syncedByWrite(seg);
        else if (this.options.fsync === 'always') await this.sync(seg);
        let maxTs = seg.readableMaxTimestampMs;
        for (let k = i; k < j; k++) if (items[k].maxTimestampMs > maxTs) maxTs = items[k].maxTimestampMs;
        seg.readableBytes = seg.writtenBytes;
        seg.readableNextOffset = last.lastOffset + 1;
        seg.readableMaxTimestampMs = maxTs;
        i = j;
      }
      await this.sealFinished();
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** A round written through an O_DSYNC fd is durable once written: counted as the fsync it replaces. */
  private syncedByWrite(seg: Segment): void {
    this.fsyncCount++;
    seg.syncedBytes = Math.max(seg.syncedBytes, seg.writtenBytes);
  }

  private async sync(seg: Segment): Promise<void> {
    const written = seg.writtenBytes;
    if (this.extras.beforeSync) await this.extras.beforeSync(seg.logPath);
    await fdatasync(seg.fd!);
    this.fsyncCount++;
    seg.syncedBytes = Math.max(seg.syncedBytes, written);
  }

  private async createSegmentFile(seg: Segment): Promise<void> {
    assert(
      this.segments.every((s) => s === seg || s.preallocation === null),
      'a segment file is created only after the older segments end at their data',
    );
    await seg.acquire(true);
    seg.release();
    await fsyncDir(this.dir); // the new file's directory entry survives a crash
  }

  /** Seals rolled-away segments whose writes are all done: fsync, index files, into the cache. */
  private async sealFinished(): Promise<void> {
    while (this.sealQueue.length > 0 && this.sealQueue[0].writtenBytes === this.sealQueue[0].sizeBytes) {
      const seg = this.sealQueue[0];
      // A sealed segment ends at its data: recovery reads only the last segment's tail as torn.
      await seg.endAtData();
      if (seg.fd !== null && seg.syncedBytes < seg.writtenBytes) await this.sync(seg);
      if (seg.fileExists) await seg.writeIndexFiles();
      seg.markAllReadable();
      this.sealQueue.shift();
      this.touch(seg);
    }
  }

  private async syncActive(): Promise<void> {
    const seg = this.active;
    if (seg.fd === null || seg.syncedBytes >= seg.writtenBytes) return;
    await seg.acquire();
    try {
      await this.sync(seg);
    } finally {
      seg.release();
    }
  }

  private fail(err: unknown): WharfError {
    if (this.failure) return this.failure;
    const message = err instanceof Error ? err.message : String(err);
    this.failure = new WharfError(
      'UNAVAILABLE',
      `the log at ${this.dir} stopped after a write error (${message}); fix the disk and reopen it`,
      { cause: err },
    );
    return this.failure;
  }

  /** Marks an older segment recently used; evicts the least recently used beyond the bound. */
  private touch(seg: Segment): void {
    if (seg === this.active || this.sealQueue.includes(seg)) return;
    this.resident.delete(seg);
    this.resident.add(seg);
    const max = this.extras.maxResidentSegments ?? 4;
    for (const old of this.resident) {
      if (this.resident.size <= max) break;
      if (old.evict()) this.resident.delete(old);
    }
  }

  private async indexesOf(seg: Segment): Promise<SegmentIndexes> {
    return seg.indexes ?? (await seg.loadIndexes());
  }

  /** Visits readable batches holding offsets >= fromOffset, across segments, within budget. */
  private async visitBatches(
    fromOffset: number,
    budget: ReadBudget,
    chunkBytes: number,
    visit: BatchVisitor,
  ): Promise<void> {
    let offset = Math.max(fromOffset, this.startOffset);
    while (!budget.stopped) {
      this.checkOpen();
      const seg = this.segments[findSegmentIndex(this.segments, offset)];
      offset = Math.max(offset, seg.baseOffset);
      if (offset >= seg.readableNextOffset) return;
      const fd = await seg.acquire();
      try {
        const { offsets } = await this.indexesOf(seg);
        const entry = offsets.floorEntry(offset - seg.baseOffset);
        const position = entry < 0 ? 0 : offsets.positionAt(entry);
        const batchOffset = seg.baseOffset + (entry < 0 ? 0 : offsets.relOffsetAt(entry));
        await visitSegmentBatches(seg, fd, position, batchOffset, offset, budget, chunkBytes, visit, offsets);
      } finally {
        seg.release();
      }
      this.touch(seg);
      if (!seg.isFullyReadable || seg.nextOffset >= this.endOffset) return;
      offset = seg.nextOffset;
    }
  }

  async read(fromOffset: number, options: ReadOptions): Promise<LogRecord[]> {
    this.checkOpen();
    validateOffset(fromOffset, 'fromOffset');
    const { maxBytes, maxRecords } = validateReadOptions(options);
    const out: LogRecord[] = [];
    const budget: ReadBudget = {
      bytesLeft: maxBytes,
      batchesTaken: 0,
      stopped: false,
      mayStopEarly: options.wholeBatches === true,
    };
    // A caller wanting few records should not pay for reading maxBytes: read in smaller chunks.
    const chunkBytes = Math.min(maxBytes, Math.max(READ_CHUNK_MIN_BYTES, maxRecords * READ_CHUNK_BYTES_PER_RECORD));
    await this.visitBatches(fromOffset, budget, chunkBytes, (buf, pos) => {
      decodeRecordsInto(
        buf,
        pos,
        fromOffset,
        out,
        options.wholeBatches === true ? Number.MAX_SAFE_INTEGER : maxRecords,
      );
      return out.length < maxRecords;
    });
    return out;
  }

  async readBatches(fromOffset: number, options: ReadOptions): Promise<Uint8Array[]> {
    this.checkOpen();
    validateOffset(fromOffset, 'fromOffset');
    const { maxBytes } = validateReadOptions(options);
    const out: Uint8Array[] = [];
    const budget: ReadBudget = { bytesLeft: maxBytes, batchesTaken: 0, stopped: false };
    await this.visitBatches(fromOffset, budget, maxBytes, (buf, pos, size) => {
      out.push(buf.subarray(pos, pos + size));
      return true;
    });
    return out;
  }

  async offsetForTimestamp(timestampMs: number): Promise<number> {
    this.checkOpen();
    validateTimestamp(timestampMs, 'timestampMs');
    for (const seg of this.segments.slice()) {
      // A snapshot: retention may delete segments while this awaits; reads re-find by offset.
      if (seg.readableMaxTimestampMs < timestampMs) {
        if (!seg.isFullyReadable) break;
        continue;
      }
      const indexes = await this.indexesOf(seg);
      const fromOffset = seg.baseOffset + indexes.times.lookup(timestampMs);
      let found = -1;
      const budget: ReadBudget = { bytesLeft: Number.MAX_SAFE_INTEGER, batchesTaken: 0, stopped: false };
      await this.visitBatches(fromOffset, budget, TIMESTAMP_SCAN_CHUNK_BYTES, (buf, pos, _size, maxTs) => {
        if (maxTs < timestampMs) return true;
        const records: LogRecord[] = [];
        decodeRecordsInto(buf, pos, 0, records, Number.MAX_SAFE_INTEGER);
        found = records.find((r) => r.timestampMs >= timestampMs)!.offset;
        return false;
      });
      if (found >= 0) return found;
      break;
    }
    return this.endOffset;
  }

  applyRetention(nowMs: number): Promise<number> {
    return this.whileIdle(() => {
      validateTimestamp(nowMs, 'nowMs');
      return this.deleteOldest(retentionDeleteCount(this.segments, this.options, nowMs));
    });
  }

  truncateBefore(offset: number): Promise<number> {
    return this.whileIdle(() => {
      validateOffset(offset, 'offset');
      return this.deleteOldest(truncateDeleteCount(this.segments, offset));
    });
  }

  /** Runs fn between write rounds, once everything appended before is written. */
  private whileIdle<R>(fn: () => Promise<R>): Promise<R> {
    try {
      this.checkOpen();
      if (this.failure) throw this.failure;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.committer.exclusive(fn);
  }

  private async deleteOldest(requested: number): Promise<number> {
    // Appends submitted while this task waited for its turn are placed in the active segment and
    // written by a round after it: a segment holding them is never deleted (retention by a
    // timestamp the producer gave could count it as expired).
    const active = this.active;
    const count =
      requested === this.segments.length && active.writtenBytes < active.sizeBytes ? requested - 1 : requested;
    if (count === 0) return 0;
    assert(this.sealQueue.length === 0, 'no segment awaits sealing between rounds');
    if (count === this.segments.length) {
      // Everything goes: first roll a fresh active segment at the end offset (as Kafka does), so
      // the log keeps its offsets across a restart. It is the active one before the first await,
      // so an append from here on goes to it and never to a segment being deleted.
      const fresh = new Segment(this.dir, this.endOffset, this.options.indexIntervalBytes, this.durableWrites);
      fresh.indexes = emptyIndexes();
      this.segments.push(fresh);
      // The old active one ends at its data before the fresh file exists: only the last segment
      // file may end in zeros.
      await active.endAtData();
      await this.createSegmentFile(fresh);
    }
    const doomed = this.segments.splice(0, count);
    for (const seg of doomed) {
      assert(seg.writtenBytes === seg.sizeBytes, 'a segment is deleted only once everything placed in it is written');
      this.resident.delete(seg);
      await seg.deleteFiles(); // oldest first, so a crash midway leaves a contiguous log
    }
    await fsyncDir(this.dir);
    return count;
  }

  flush(): Promise<void> {
    return this.whileIdle(() => this.syncActive());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.committer.drain();
    await this.syncer?.stop();
    try {
      if (!this.failure) {
        await this.active.endAtData();
        await this.syncActive();
        // The index files are the recovery point: written only for fsynced data.
        if (this.active.fileExists) await this.active.writeIndexFiles();
      }
    } finally {
      for (const seg of this.segments) await seg.retire();
      this.extras.onClose?.();
    }
  }
}
