// Shared helpers for the storage tests: temp dirs, record builders, both storage kinds.
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import {
  openDiskStorage,
  openMemoryStorage,
  type LogOptions,
  type RecordInput,
  type Storage,
} from '../../src/storage/index.js';

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

export function storageKinds(): Array<{ name: 'disk' | 'memory'; make: () => StorageKind }> {
  return [
    {
      name: 'disk',
      make: () => {
        const dir = tempDir();
        return { name: 'disk', open: () => openDiskStorage(dir), cleanup: () => removeDir(dir) };
      },
    },
    {
      name: 'memory',
      make: () => {
        const storage = openMemoryStorage();
        // Memory storage survives log close/reopen but not storage close: reuse one instance.
        const wrapper: Storage = Object.create(storage) as Storage;
        wrapper.close = async () => undefined;
        return { name: 'memory', open: async () => wrapper, cleanup: () => undefined };
      },
    },
  ];
}

export const SEGMENT_0 = '00000000000000000000.log';

export interface CrashImage {
  /** A copy of the log directory taken while the log was open (as a crash would leave it). */
  dir: string;
  /** Byte position of each batch in the first segment, plus its end. */
  batchPositions: number[];
}

/**
 * Appends batchCount one-record batches ('v0', 'v1', ... at timestamps 1000, 1001, ...) to a disk
 * log and copies its directory while the log is still open: the state a kill -9 leaves behind.
 */
export async function makeCrashImage(batchCount: number, options: Partial<LogOptions> = {}): Promise<CrashImage> {
  const { DiskLog, resolveLogOptions } = await import('../../src/storage/index.js');
  const live = tempDir('wharf-live-');
  const log = await DiskLog.open(live, resolveLogOptions(options));
  for (let i = 0; i < batchCount; i++) await log.append([rec(`v${i}`, 1000 + i)]);
  const batches = await log.readBatches(0, { maxBytes: 1 << 20 });
  const batchPositions = [0];
  for (const b of batches) batchPositions.push(batchPositions[batchPositions.length - 1] + b.byteLength);
  const dir = tempDir('wharf-crash-');
  fs.cpSync(live, dir, { recursive: true });
  await log.close();
  removeDir(live);
  return { dir, batchPositions };
}

export function expectWharfError(err: unknown, code: string): { message: string; details?: Record<string, unknown> } {
  const e = err as { code?: string; message: string; details?: Record<string, unknown> };
  if (e?.code !== code) throw new Error(`expected WharfError ${code}, got ${String((e as Error)?.stack ?? e)}`);
  return e;
}

export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}
