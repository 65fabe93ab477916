// The memory Storage: logs, journals and meta kept in maps by path. Nothing touches the disk;
// a log or journal closed and reopened through the same storage sees its data again.
import { WharfError } from '../common/index.js';
import { MemoryJournal, MemoryJournalData } from './memory-journal.js';
import { MemoryLog, MemoryLogData } from './memory-log.js';
import { checkRemovable, claimPath, pathKey, validatePath } from './storage-paths.js';
import type { Journal, JournalOptions, LogOptions, PartitionLog, Storage } from './types.js';
import { resolveJournalOptions, resolveLogOptions } from './validate.js';

class MemoryStorage implements Storage {
  readonly kind = 'memory' as const;
  private readonly logs = new Map<string, MemoryLogData>();
  private readonly journals = new Map<string, MemoryJournalData>();
  private readonly metas = new Map<string, Uint8Array>();
  private readonly opened = new Map<string, PartitionLog | Journal>();
  private closed = false;

  private check(): void {
    if (this.closed) throw new WharfError('CLOSED', 'the memory storage is closed');
  }

  private claim(path: string[]): string {
    this.check();
    return claimPath(this.opened, path);
  }

  async openLog(path: string[], options: LogOptions): Promise<PartitionLog> {
    const key = this.claim(path);
    const resolved = resolveLogOptions(options);
    let data = this.logs.get(key);
    if (!data) this.logs.set(key, (data = new MemoryLogData()));
    const log = new MemoryLog(data, resolved, () => this.opened.delete(key));
    this.opened.set(key, log);
    return log;
  }

  async openJournal(path: string[], options: JournalOptions): Promise<Journal> {
    const key = this.claim(path);
    resolveJournalOptions(options);
    let data = this.journals.get(key);
    if (!data) this.journals.set(key, (data = new MemoryJournalData()));
    const journal = new MemoryJournal(data, () => this.opened.delete(key));
    this.opened.set(key, journal);
    return journal;
  }

  private keysUnder(prefix: string): string[] {
    const all = [...this.logs.keys(), ...this.journals.keys(), ...this.metas.keys()];
    return all.filter((k) => prefix === '' || k === prefix || k.startsWith(prefix + '/'));
  }

  async remove(path: string[]): Promise<void> {
    this.check();
    const key = checkRemovable(this.opened, path);
    for (const k of this.keysUnder(key)) {
      this.logs.delete(k);
      this.journals.delete(k);
      this.metas.delete(k);
    }
  }

  async list(path: string[]): Promise<string[]> {
    this.check();
    validatePath(path, true);
    const key = pathKey(path);
    const children = new Set<string>();
    for (const k of this.keysUnder(key)) {
      if (k === key) continue;
      const rest = key === '' ? k : k.slice(key.length + 1);
      children.add(rest.split('/')[0]);
    }
    return [...children].sort();
  }

  async readMeta(path: string[]): Promise<Uint8Array | null> {
    this.check();
    validatePath(path);
    const bytes = this.metas.get(pathKey(path));
    return bytes === undefined ? null : bytes.slice();
  }

  async writeMeta(path: string[], bytes: Uint8Array): Promise<void> {
    this.check();
    validatePath(path);
    if (!(bytes instanceof Uint8Array)) throw new WharfError('INVALID_ARGUMENT', 'meta bytes must be a Uint8Array');
    this.metas.set(pathKey(path), bytes.slice());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.opened.values()].map((i) => i.close()));
  }
}

export function openMemoryStorage(): Storage {
  return new MemoryStorage();
}
