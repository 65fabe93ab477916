// The disk Storage: a root directory holding logs (directories of segments), journals and meta
// files at the paths callers name, locked against a second process by the LOCK file.
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { WharfError } from '../common/index.js';
import { readFileOrNull, TEMP_SUFFIX, writeFileAtomic } from './atomic-file.js';
import { fsyncDir, isNotFound, mkdirDurable } from './file-io.js';
import { acquireLock } from './file-lock.js';
import { DiskJournal } from './journal.js';
import { DiskLog } from './partition-log.js';
import { checkRemovable, claimPath, LOCK_FILE_NAME, validatePath } from './storage-paths.js';
import type { Journal, JournalOptions, LogOptions, PartitionLog, Storage } from './types.js';
import { resolveJournalOptions, resolveLogOptions } from './validate.js';

export interface DiskStorageOptions {
  /** Verify every batch of every segment when a log opens, ignoring index files (slow; an fsck). */
  fullRecoveryScan?: boolean;
  /** Per log: older segments whose fd and indexes stay cached. Default 4. */
  maxResidentSegments?: number;
}

type Openable = PartitionLog | Journal;

class DiskStorage implements Storage {
  readonly kind = 'disk' as const;
  /** Open logs and journals by path key; null while one is opening. */
  private readonly opened = new Map<string, Openable | null>();
  private closed = false;

  constructor(
    readonly rootDir: string,
    private readonly options: DiskStorageOptions,
    private readonly releaseLock: () => Promise<void>,
  ) {}

  private check(): void {
    if (this.closed) throw new WharfError('CLOSED', `the storage at ${this.rootDir} is closed`);
  }

  private fsPath(path: string[]): string {
    return join(this.rootDir, ...path);
  }

  private async openOnce<T extends Openable>(path: string[], open: (key: string) => Promise<T>): Promise<T> {
    this.check();
    const key = claimPath(this.opened, path);
    this.opened.set(key, null);
    try {
      const item = await open(key);
      this.opened.set(key, item);
      return item;
    } catch (err) {
      this.opened.delete(key);
      throw err;
    }
  }

  openLog(path: string[], options: LogOptions): Promise<PartitionLog> {
    return this.openOnce(path, (key) =>
      DiskLog.open(this.fsPath(path), resolveLogOptions(options), {
        fullRecoveryScan: this.options.fullRecoveryScan,
        maxResidentSegments: this.options.maxResidentSegments,
        onClose: () => this.opened.delete(key),
      }),
    );
  }

  openJournal(path: string[], options: JournalOptions): Promise<Journal> {
    return this.openOnce(path, (key) =>
      DiskJournal.open(this.fsPath(path), resolveJournalOptions(options), () => this.opened.delete(key)),
    );
  }

  async remove(path: string[]): Promise<void> {
    this.check();
    checkRemovable(this.opened, path);
    const target = this.fsPath(path);
    await fs.promises.rm(target, { recursive: true, force: true });
    await fsyncDir(dirname(target)).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  async list(path: string[]): Promise<string[]> {
    this.check();
    validatePath(path, true);
    try {
      const names = await fs.promises.readdir(this.fsPath(path));
      return names.filter((n) => !n.endsWith(TEMP_SUFFIX) && !(path.length === 0 && n === LOCK_FILE_NAME)).sort();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw err;
    }
  }

  async readMeta(path: string[]): Promise<Uint8Array | null> {
    this.check();
    validatePath(path);
    return readFileOrNull(this.fsPath(path));
  }

  async writeMeta(path: string[], bytes: Uint8Array): Promise<void> {
    this.check();
    validatePath(path);
    if (!(bytes instanceof Uint8Array)) throw new WharfError('INVALID_ARGUMENT', 'meta bytes must be a Uint8Array');
    const target = this.fsPath(path);
    await mkdirDurable(dirname(target));
    await writeFileAtomic(target, [bytes]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const items = [...this.opened.values()].filter((i): i is Openable => i !== null);
    try {
      await Promise.all(items.map((i) => i.close()));
    } finally {
      await this.releaseLock();
    }
  }
}

/** Opens (creating if needed) and locks a storage root directory. */
export async function openDiskStorage(rootDir: string, options: DiskStorageOptions = {}): Promise<Storage> {
  if (typeof rootDir !== 'string' || rootDir.length === 0)
    throw new WharfError('INVALID_ARGUMENT', 'openDiskStorage needs a directory path');
  await mkdirDurable(rootDir);
  const release = await acquireLock(rootDir);
  return new DiskStorage(rootDir, options, release);
}
