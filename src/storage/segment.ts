// One segment of a disk log: its three files (<base>.log, <base>.index, <base>.timeindex), what is
// assigned / written / readable in it, its sparse indexes, and its file descriptor's lifetime.
// Reads hold a reference so retention can delete a segment under a reader safely.
import fs from 'node:fs';
import { join } from 'node:path';
import { assert } from '../common/index.js';
import { closeFd, DSYNC_FLAG, openFd, readAt, isNotFound } from './file-io.js';
import { OffsetIndex } from './offset-index.js';
import type { SegmentStats } from './log-policy.js';
import { TimeIndex } from './time-index.js';
import type { Preallocation } from './preallocation.js';

export const LOG_SUFFIX = '.log';
export const INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
const NAME_DIGITS = 20;

/** 00000000000000000042 for 42, as Kafka names segment files. */
export function segmentFileStem(baseOffset: number): string {
  return String(baseOffset).padStart(NAME_DIGITS, '0');
}

/** The base offset a segment file name encodes, or null when it is not a segment log file. */
export function parseSegmentLogName(name: string): number | null {
  if (!name.endsWith(LOG_SUFFIX) || name.length !== NAME_DIGITS + LOG_SUFFIX.length) return null;
  const stem = name.slice(0, NAME_DIGITS);
  if (!/^\d+$/.test(stem)) return null;
  const base = Number(stem);
  return Number.isSafeInteger(base) ? base : null;
}

export interface SegmentIndexes {
  offsets: OffsetIndex;
  times: TimeIndex;
}

export class Segment implements SegmentStats {
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;

  // Assigned state: includes batches still queued for writing. Drives roll and index decisions.
  sizeBytes = 0;
  nextOffset: number;
  maxTimestampMs = -1;
  rollTimestampMs = -1;
  private bytesSinceIndexEntry = 0;

  // Written, synced and readable prefixes. Readers never look past readableBytes: under fsync
  // 'always' that is what an fsync has covered, so a consumer never sees a record a crash could lose.
  writtenBytes = 0;
  syncedBytes = 0;
  readableBytes = 0;
  readableNextOffset: number;
  readableMaxTimestampMs = -1;

  /** In memory for the active segment; loaded on demand (and evicted) for older ones. */
  indexes: SegmentIndexes | null = null;
  fd: number | null = null;
  /** Zeros ahead of the active segment's data under O_DSYNC (preallocation.ts); null once sealed. */
  preallocation: Preallocation | null = null;
  fileExists = false;
  private refs = 0;
  private deleted = false;
  /** Closed log: the fd closes once the last reader releases it. */
  private retired = false;
  private opening: Promise<number> | null = null;

  constructor(
    readonly dir: string,
    readonly baseOffset: number,
    readonly indexIntervalBytes: number,
    /**
     * Writes are durable when they return (the writable fd has O_DSYNC): fsync 'always' makes a
     * round one write call instead of a write and an fdatasync, each a trip through the I/O pool.
     */
    readonly durableWrites = false,
  ) {
    const stem = segmentFileStem(baseOffset);
    this.logPath = join(dir, stem + LOG_SUFFIX);
    this.indexPath = join(dir, stem + INDEX_SUFFIX);
    this.timeIndexPath = join(dir, stem + TIME_INDEX_SUFFIX);
    this.nextOffset = baseOffset;
    this.readableNextOffset = baseOffset;
  }

  get fileName(): string {
    return segmentFileStem(this.baseOffset) + LOG_SUFFIX;
  }

  get isFullyReadable(): boolean {
    return this.readableBytes === this.sizeBytes;
  }

  /**
   * Records a batch placed at position: advances the assigned state and adds a sparse index entry
   * once indexIntervalBytes have passed since the last one. Used by append and by recovery, so an
   * index rebuilt from the log is identical to the one built while appending.
   */
  noteBatch(baseOffset: number, lastOffset: number, position: number, sizeBytes: number, maxTimestampMs: number): void {
    assert(position === this.sizeBytes && baseOffset === this.nextOffset, 'batches are contiguous in a segment');
    const idx = this.indexes;
    assert(idx !== null, 'indexes are loaded while batches are noted');
    const rel = baseOffset - this.baseOffset;
    if (this.bytesSinceIndexEntry >= this.indexIntervalBytes && rel > idx.offsets.lastRelOffset && position > 0) {
      idx.offsets.append(rel, position);
      idx.times.append(this.maxTimestampMs, rel);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += sizeBytes;
    if (position === 0) this.rollTimestampMs = maxTimestampMs;
    if (maxTimestampMs > this.maxTimestampMs) this.maxTimestampMs = maxTimestampMs;
    this.sizeBytes = position + sizeBytes;
    this.nextOffset = lastOffset + 1;
  }

  /** Resets the assigned state to resume noting batches after the last index entry (recovery). */
  resumeFromIndexes(indexes: SegmentIndexes): number {
    this.indexes = indexes;
    this.bytesSinceIndexEntry = 0;
    this.maxTimestampMs = indexes.times.lastTimestampMs;
    this.sizeBytes = indexes.offsets.lastPosition;
    this.nextOffset = this.baseOffset + Math.max(0, indexes.offsets.lastRelOffset);
    return this.sizeBytes;
  }

  /** Marks everything assigned as written, synced and readable (after recovery). */
  markAllReadable(): void {
    this.writtenBytes = this.syncedBytes = this.readableBytes = this.sizeBytes;
    this.readableNextOffset = this.nextOffset;
    this.readableMaxTimestampMs = this.maxTimestampMs;
  }

  /** Opens (or reuses) the file descriptor and holds a reference until release(). */
  async acquire(writable = false): Promise<number> {
    assert(!this.deleted && !this.retired, 'a deleted or retired segment is not acquired');
    this.refs++;
    try {
      if (this.fd !== null) return this.fd;
      this.opening ??= openFd(
        this.logPath,
        writable ? fs.constants.O_RDWR | fs.constants.O_CREAT | (this.durableWrites ? DSYNC_FLAG! : 0) : 'r',
      ).finally(() => (this.opening = null));
      this.fd = await this.opening;
      this.fileExists = true;
      return this.fd;
    } catch (err) {
      this.refs--;
      throw err;
    }
  }

  release(): void {
    assert(this.refs > 0, 'release matches acquire');
    this.refs--;
    if (this.refs === 0 && (this.deleted || this.retired)) void this.closeFd();
  }

  /** The log closes: no new readers; the fd closes now or when the last reader leaves. */
  async retire(): Promise<void> {
    this.retired = true;
    if (this.refs === 0) await this.closeFd();
  }

  get inUse(): boolean {
    return this.refs > 0;
  }

  /** Closes the fd and drops the indexes when nobody reads (cache eviction). */
  evict(): boolean {
    if (this.refs > 0) return false;
    this.indexes = null;
    void this.closeFd();
    return true;
  }

  async closeFd(): Promise<void> {
    const fd = this.fd;
    this.fd = null;
    // A fill of zeros still running must finish first: none may land in whatever file the fd
    // number goes to next.
    await this.preallocation?.stop();
    if (fd !== null) await closeFd(fd).catch(() => undefined);
  }

  /** Cuts the zeros written ahead of the data (seal, or everything deleted): the file ends at its data. */
  async endAtData(): Promise<void> {
    await this.preallocation?.trim();
    this.preallocation = null;
  }

  /** Unlinks the files; the fd closes once the last reader releases it. */
  async deleteFiles(): Promise<void> {
    this.deleted = true;
    this.indexes = null;
    for (const path of [this.logPath, this.indexPath, this.timeIndexPath]) {
      await fs.promises.unlink(path).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
    if (this.refs === 0) await this.closeFd();
  }

  /** Writes both index files from memory. Not fsynced: recovery detects and rebuilds stale ones. */
  async writeIndexFiles(): Promise<void> {
    const idx = this.indexes;
    assert(idx !== null, 'indexes are in memory when written');
    await fs.promises.writeFile(this.indexPath, idx.offsets.toBuffer());
    await fs.promises.writeFile(this.timeIndexPath, idx.times.toBuffer());
  }

  /**
   * Reads the index files; null (with the reason) when missing or inconsistent with the log of
   * logSizeBytes, in which case the caller rebuilds them by scanning the log.
   */
  async readIndexFiles(logSizeBytes: number): Promise<SegmentIndexes | string> {
    let offsetBytes: Buffer;
    let timeBytes: Buffer;
    try {
      offsetBytes = await fs.promises.readFile(this.indexPath);
      timeBytes = await fs.promises.readFile(this.timeIndexPath);
    } catch (err) {
      if (isNotFound(err)) return 'missing';
      throw err;
    }
    const offsets = OffsetIndex.fromBuffer(offsetBytes, logSizeBytes, 0x7fffffff);
    if (typeof offsets === 'string') return `${this.indexPath}: ${offsets}`;
    const times = TimeIndex.fromBuffer(timeBytes, offsets);
    if (typeof times === 'string') return `${this.timeIndexPath}: ${times}`;
    return { offsets, times };
  }

  /** Loads the indexes of a sealed segment from its files (they were validated or rebuilt at open). */
  async loadIndexes(): Promise<SegmentIndexes> {
    if (this.indexes) return this.indexes;
    const loaded = await this.readIndexFiles(this.sizeBytes);
    if (typeof loaded === 'string') {
      // Changed behind our back since open: fall back to no entries (a scan from position 0).
      this.indexes = { offsets: new OffsetIndex(), times: new TimeIndex() };
    } else this.indexes = loaded;
    return this.indexes;
  }

  /** Reads the header bytes of the first batch (for the roll timestamp after recovery). */
  async readAt(position: number, lengthBytes: number): Promise<Buffer> {
    const fd = await this.acquire();
    try {
      return await readAt(fd, position, lengthBytes);
    } finally {
      this.release();
    }
  }
}

export function emptyIndexes(): SegmentIndexes {
  return { offsets: new OffsetIndex(), times: new TimeIndex() };
}
