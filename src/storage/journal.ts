// The disk Journal: an append-only file of CRC-framed entries (journal-format.ts), written by
// group-commit rounds like the log, replayed whole on open (owners keep journals small through
// rewrite), and replaced atomically by rewrite().
import fs from 'node:fs';
import { dirname } from 'node:path';
import { WharfError } from '../common/index.js';
import { writeFileAtomic } from './atomic-file.js';
import {
  closeFd,
  DSYNC_FLAG,
  durableWritesFor,
  fdatasync,
  ftruncate,
  isNotFound,
  mkdirDurable,
  openFd,
  writevAll,
} from './file-io.js';
import { syncerFor, type IntervalSyncer } from './fsync-timer.js';
import { GroupCommitter, type CommitItem } from './group-commit.js';
import { Preallocation } from './preallocation.js';
import { encodeFrame, journalHeader, parseJournal } from './journal-format.js';
import type { Journal, JournalOptions } from './types.js';

const NOOP = (): void => undefined;
const NO_ENTRIES: Uint8Array[] = [];

/**
 * fsync 'always' opens the journal with O_DSYNC where it is available (file-io.ts): a round is one
 * write call that returns once durable, instead of a write and an fdatasync, each a trip through
 * the I/O pool.
 */
function writeFlags(options: JournalOptions): number {
  return fs.constants.O_RDWR | (durableWritesFor(options.fsync) ? DSYNC_FLAG! : 0);
}

interface PendingFrame extends CommitItem {
  frame: Buffer;
  position: number;
}

export class DiskJournal implements Journal {
  /** fdatasync calls (tests check group commit with it). */
  fsyncCount = 0;
  private readonly committer = new GroupCommitter<PendingFrame>((items) => this.writeRound(items));
  private readonly syncer: IntervalSyncer | null;
  private closed = false;
  private failure: WharfError | null = null;
  /** Bytes assigned (header + frames, including queued ones). */
  private assignedBytes: number;
  private writtenBytes: number;
  private syncedBytes: number;

  /** fsync 'always' where O_DSYNC serves (file-io.ts): the fd writes through O_DSYNC. */
  private readonly durableWrites: boolean;
  /** Zeros ahead of the data when durableWrites (preallocation.ts); one per fd. */
  private preallocation: Preallocation | null;

  private constructor(
    readonly path: string,
    readonly options: JournalOptions,
    private fd: number,
    /**
     * The entries recovered on open (views of the file as read then), until the first append or
     * rewrite: owners read them before they write, and the file's bytes are let go after.
     */
    private recovered: Uint8Array[],
    sizeBytes: number,
    private readonly onClose: () => void,
  ) {
    this.assignedBytes = this.writtenBytes = this.syncedBytes = sizeBytes;
    this.durableWrites = durableWritesFor(options.fsync);
    this.preallocation = this.preallocationFor(fd, sizeBytes);
    this.syncer = syncerFor(
      options,
      () => this.syncNow(),
      (err) => this.fail(err),
    );
  }

  static async open(
    path: string,
    options: JournalOptions,
    onClose: () => void = () => undefined,
  ): Promise<DiskJournal> {
    await mkdirDurable(dirname(path));
    let bytes: Buffer | null = null;
    try {
      bytes = await fs.promises.readFile(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const parsed = bytes === null ? { entries: [], validBytes: 0 } : parseJournal(bytes, path);
    if (parsed.validBytes === 0) {
      // New (or torn while being created): start from a bare header.
      await writeFileAtomic(path, [journalHeader()]);
      parsed.validBytes = journalHeader().length;
    }
    const fd = await openFd(path, writeFlags(options));
    if (bytes !== null && parsed.validBytes > 0 && parsed.validBytes < bytes.length) {
      // A torn tail (the crash came before the fsync that would have acknowledged it), or zeros
      // written ahead of the data (preallocation.ts).
      await ftruncate(fd, parsed.validBytes);
      await fdatasync(fd);
    } else if (durableWritesFor(options.fsync)) {
      // Later rounds make only their own bytes durable (O_DSYNC): what a crash or an earlier run
      // under another fsync policy left unsynced in the file is synced once now.
      await fdatasync(fd);
    }
    return new DiskJournal(path, options, fd, parsed.entries, parsed.validBytes, onClose);
  }

  private preallocationFor(fd: number, sizeBytes: number): Preallocation | null {
    return this.durableWrites ? new Preallocation(fd, sizeBytes, Number.MAX_SAFE_INTEGER) : null;
  }

  get sizeBytes(): number {
    return this.assignedBytes;
  }

  entries(): Iterable<Uint8Array> {
    return this.recovered.slice();
  }

  private checkWritable(): void {
    if (this.closed) throw new WharfError('CLOSED', `the journal ${this.path} is closed`);
    if (this.failure) throw this.failure;
  }

  append(entry: Uint8Array): Promise<void> {
    let item: PendingFrame;
    try {
      this.checkWritable();
      if (!(entry instanceof Uint8Array))
        throw new WharfError('INVALID_ARGUMENT', 'a journal entry must be a Uint8Array');
      const frame = encodeFrame(entry);
      item = { frame, position: this.assignedBytes, resolve: NOOP, reject: NOOP };
      this.assignedBytes += frame.length;
      this.recovered = NO_ENTRIES;
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      // Settled through the item itself: no object spread per append.
      item.resolve = resolve;
      item.reject = reject;
      this.committer.submit(item);
    });
  }

  private async writeRound(items: PendingFrame[]): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      const frames = items.map((i) => i.frame);
      const last = items[items.length - 1];
      const end = last.position + last.frame.length;
      if (this.preallocation !== null)
        await this.preallocation.write(frames, items[0].position, end - items[0].position);
      else await writevAll(this.fd, frames, items[0].position);
      this.writtenBytes = end;
      if (this.durableWrites) {
        // Written through an O_DSYNC fd (writeFlags): durable already, counted as the fsync it replaces.
        this.fsyncCount++;
        this.syncedBytes = this.writtenBytes;
      } else if (this.options.fsync === 'always') await this.syncNow();
    } catch (err) {
      throw this.fail(err);
    }
    this.syncer?.markDirty();
  }

  private async syncNow(): Promise<void> {
    if (this.syncedBytes >= this.writtenBytes) return;
    const written = this.writtenBytes;
    await fdatasync(this.fd);
    this.fsyncCount++;
    this.syncedBytes = Math.max(this.syncedBytes, written);
  }

  private fail(err: unknown): WharfError {
    if (this.failure) return this.failure;
    const message = err instanceof Error ? err.message : String(err);
    this.failure = new WharfError(
      'UNAVAILABLE',
      `the journal ${this.path} stopped after a write error (${message}); reopen it`,
      {
        cause: err,
      },
    );
    return this.failure;
  }

  rewrite(entries: Uint8Array[]): Promise<void> {
    let frames: Buffer[];
    try {
      this.checkWritable();
      if (!Array.isArray(entries) || !entries.every((e) => e instanceof Uint8Array))
        throw new WharfError('INVALID_ARGUMENT', 'rewrite takes an array of Uint8Array entries');
      frames = entries.map(encodeFrame);
      // Later appends follow the snapshot; the recovered entries are let go (see `recovered`).
      this.recovered = NO_ENTRIES;
      this.assignedBytes = frames.reduce((sum, f) => sum + f.length, journalHeader().length);
    } catch (err) {
      return Promise.reject(err);
    }
    const sizeBytes = this.assignedBytes;
    return this.committer.exclusive(async () => {
      try {
        await writeFileAtomic(this.path, [journalHeader(), ...frames]);
        const old = this.fd;
        await this.preallocation?.stop(); // its zeros go with the old file; none may land after its fd closes
        this.fd = await openFd(this.path, writeFlags(this.options));
        this.preallocation = this.preallocationFor(this.fd, sizeBytes);
        await closeFd(old);
        this.writtenBytes = this.syncedBytes = sizeBytes;
      } catch (err) {
        throw this.fail(err);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.committer.drain();
    await this.syncer?.stop();
    try {
      if (!this.failure) {
        await this.preallocation?.trim();
        await this.syncNow();
      }
    } finally {
      await this.preallocation?.stop();
      await closeFd(this.fd);
      this.onClose();
    }
  }
}
