// The memory Journal: the same contract as the disk one, entries kept in an array that the
// memory storage holds per path so a reopen sees them.
import { WharfError } from '../common/index.js';
import { FRAME_HEADER_BYTES, JOURNAL_HEADER_BYTES } from './journal-format.js';
import type { Journal } from './types.js';

export class MemoryJournalData {
  entries: Uint8Array[] = [];
  /** What the entries would take on disk, kept as they change (not summed per call: callers ask once per ack). */
  sizeBytes = JOURNAL_HEADER_BYTES;
}

export class MemoryJournal implements Journal {
  private closed = false;

  /** The entries as this journal was opened with them, until the first append or rewrite (the contract's entries()). */
  private recovered: Uint8Array[];

  constructor(
    private readonly data: MemoryJournalData,
    private readonly onClose: () => void = () => undefined,
  ) {
    this.recovered = data.entries.slice();
  }

  /** What the same entries would take on disk, so callers' size-based compaction behaves alike. */
  get sizeBytes(): number {
    return this.data.sizeBytes;
  }

  entries(): Iterable<Uint8Array> {
    return this.recovered.slice();
  }

  private check(): void {
    if (this.closed) throw new WharfError('CLOSED', 'the memory journal is closed');
  }

  append(entry: Uint8Array): Promise<void> {
    try {
      this.check();
      if (!(entry instanceof Uint8Array))
        throw new WharfError('INVALID_ARGUMENT', 'a journal entry must be a Uint8Array');
      this.data.entries.push(Uint8Array.prototype.slice.call(entry));
      this.recovered = [];
      this.data.sizeBytes += FRAME_HEADER_BYTES + entry.length;
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  rewrite(entries: Uint8Array[]): Promise<void> {
    try {
      this.check();
      if (!Array.isArray(entries) || !entries.every((e) => e instanceof Uint8Array))
        throw new WharfError('INVALID_ARGUMENT', 'rewrite takes an array of Uint8Array entries');
      this.data.entries = entries.map((e) => Uint8Array.prototype.slice.call(e));
      this.recovered = [];
      this.data.sizeBytes = entries.reduce((sum, e) => sum + FRAME_HEADER_BYTES + e.length, JOURNAL_HEADER_BYTES);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.onClose();
    }
    return Promise.resolve();
  }
}
