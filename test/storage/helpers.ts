// Shared helpers for the storage tests: temp dirs, record builders, both storage kinds.
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { openDiskStorage, openMemoryStorage, type LogOptions, type RecordInput, type Storage } from '../../src/storage/index.js';

export function tempDir(prefix = 'wharf-storage-'): string {
  return fs.mkdtempSync(join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export const enc = (s: string): Buffer => Buffer.from(s, 'utf8');
export const dec = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('utf8'));

export function rec(value: string, timestampMs = 1_000, key: string | null = null): RecordInput {
  return { key: key === null ? null : enc(key), value: enc(value), headers: [], timestampMs };
}

export const smallLog: Partial<LogOptions> = { segmentBytes: 1024, indexIntervalBytes: 128 };

export interface StorageKind {
  name: 'disk' | 'memory';
  /** Opens a storage; reopen() opens the same data again (after close). */
  open(): Promise<Storage>;
  cleanup(): void;
}

export function storageKinds(): Array<() => StorageKind> {
  return [
    () => {
      const dir = tempDir();
      return { name: 'disk', open: () => openDiskStorage(dir), cleanup: () => removeDir(dir) };
    },
    () => {
      const storage = openMemoryStorage();
      // Memory storage survives log close/reopen but not storage close: reuse one instance.
      const wrapper: Storage = Object.create(storage) as Storage;
      wrapper.close = async () => undefined;
      return { name: 'memory', open: async () => wrapper, cleanup: () => undefined };
    },
  ];
}
