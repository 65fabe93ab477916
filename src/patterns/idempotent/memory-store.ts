// Processed ids in memory: for tests and single-process demos. Lost on restart; bounded by maxKeys (oldest forgotten first).
import { WharfError } from '../../common/index.js';
import { KeyLock } from './key-lock.js';
import type { ProcessedStore } from './types.js';

export class MemoryProcessedStore implements ProcessedStore<void> {
  private readonly seen = new Set<string>();
  private readonly lock = new KeyLock();

  constructor(private readonly maxKeys = 100_000) {
    if (!Number.isInteger(maxKeys) || maxKeys <= 0) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `MemoryProcessedStore maxKeys must be a positive integer, got ${maxKeys}`,
      );
    }
  }

  async runOnce(key: string, fn: (tx: void) => Promise<void> | void): Promise<boolean> {
    return this.lock.with(key, async () => {
      if (this.seen.has(key)) return false;
      await fn();
      this.seen.add(key);
      // A Set iterates in insertion order, so the first entry is the oldest.
      if (this.seen.size > this.maxKeys) this.seen.delete(this.seen.values().next().value as string);
      return true;
    });
  }

  async has(key: string): Promise<boolean> {
    return this.seen.has(key);
  }

  async close(): Promise<void> {}
}
