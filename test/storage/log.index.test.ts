// Sparse offset and time indexes: rebuilt when missing, truncated, stale or pointing past the log,
// identical to what appending builds; timestamp lookups through the time index.
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DiskLog,
  openMemoryStorage,
  resolveLogOptions,
  type LogOptions,
  type PartitionLog,
} from '../../src/storage/index.js';
import { dec, rec, removeDir, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

const options = resolveLogOptions({ segmentBytes: 2000, indexIntervalBytes: 150 });

/** A closed log of 60 one-record batches over several segments; returns its dir and index files. */
async function closedLog(): Promise<{ dir: string; indexFiles: Map<string, Buffer> }> {
  const dir = tempDir('wharf-index-');
  dirs.push(dir);
  const log = await DiskLog.open(dir, options);
  for (let i = 0; i < 60; i++) await log.append([rec(`value-${i}`, 1000 + i * 10)]);
  await log.close();
  const indexFiles = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir))
    if (!name.endsWith('.log')) indexFiles.set(name, fs.readFileSync(join(dir, name)));
  return { dir, indexFiles };
}

async function expectIntact(dir: string, indexFiles: Map<string, Buffer>): Promise<void> {
  const log = await DiskLog.open(dir, options);
  expect(log.segmentCount).toBeGreaterThan(2);
  for (const from of [0, 7, 23, 41, 59]) {
    const got = await log.read(from, { maxBytes: 1 << 20 });
    expect(got.map((r) => r.offset)).toEqual(Array.from({ length: 60 - from }, (_, i) => from + i));
    expect(dec(got[0].value)).toBe(`value-${from}`);
  }
  expect(await log.offsetForTimestamp(1234)).toBe(24);
  await log.close();
  for (const [name, bytes] of indexFiles) expect(fs.readFileSync(join(dir, name)).equals(bytes), name).toBe(true);
}

describe('index rebuild', () => {
  it('index files hold entries every indexIntervalBytes', async () => {
    const { indexFiles } = await closedLog();
    const first = indexFiles.get('00000000000000000000.index')!;
    expect(first.byteLength % 8).toBe(0);
    expect(first.byteLength).toBeGreaterThan(8 * 5);
    expect(indexFiles.get('00000000000000000000.timeindex')!.byteLength / 12).toBe(first.byteLength / 8);
  });

  it('rebuilds deleted .index and .timeindex files identically', async () => {
    const { dir, indexFiles } = await closedLog();
    for (const name of indexFiles.keys()) fs.rmSync(join(dir, name));
    await expectIntact(dir, indexFiles);
  });

  it('rebuilds truncated index files (shorter than expected)', async () => {
    const { dir, indexFiles } = await closedLog();
    for (const [name, bytes] of indexFiles)
      fs.writeFileSync(join(dir, name), bytes.subarray(0, Math.floor(bytes.byteLength / 2)));
    await expectIntact(dir, indexFiles);
  });

  it('rebuilds an index whose entries point beyond the log', async () => {
    const { dir, indexFiles } = await closedLog();
    const bogus = Buffer.alloc(16);
    bogus.writeInt32BE(3, 0);
    bogus.writeInt32BE(1_000_000, 4);
    bogus.writeInt32BE(9, 8);
    bogus.writeInt32BE(2_000_000, 12);
    fs.writeFileSync(join(dir, '00000000000000000000.index'), bogus);
    await expectIntact(dir, indexFiles);
  });

  it('rebuilds an index whose last entry does not point at a batch', async () => {
    const { dir, indexFiles } = await closedLog();
    const bytes = Buffer.from(indexFiles.get('00000000000000000000.index')!);
    bytes.writeInt32BE(bytes.readInt32BE(bytes.byteLength - 4) + 3, bytes.byteLength - 4);
    fs.writeFileSync(join(dir, '00000000000000000000.index'), bytes);
    await expectIntact(dir, indexFiles);
  });

  it('extends a stale index left from an earlier, shorter log', async () => {
    const dir = tempDir('wharf-index-');
    dirs.push(dir);
    const single = resolveLogOptions({ indexIntervalBytes: 150 });
    const log = await DiskLog.open(dir, single);
    for (let i = 0; i < 10; i++) await log.append([rec(`value-${i}`, 1000 + i)]);
    await log.close();
    const oldIndex = fs.readFileSync(join(dir, '00000000000000000000.index'));
    const oldTimeIndex = fs.readFileSync(join(dir, '00000000000000000000.timeindex'));
    const log2 = await DiskLog.open(dir, single);
    for (let i = 10; i < 40; i++) await log2.append([rec(`value-${i}`, 1000 + i)]);
    await log2.close();
    const fresh = fs.readFileSync(join(dir, '00000000000000000000.index'));
    expect(fresh.byteLength).toBeGreaterThan(oldIndex.byteLength);
    fs.writeFileSync(join(dir, '00000000000000000000.index'), oldIndex);
    fs.writeFileSync(join(dir, '00000000000000000000.timeindex'), oldTimeIndex);
    const log3 = await DiskLog.open(dir, single);
    expect(log3.endOffset).toBe(40);
    expect((await log3.read(33, { maxBytes: 1 << 20 })).map((r) => r.offset)).toEqual([33, 34, 35, 36, 37, 38, 39]);
    await log3.close();
    expect(fs.readFileSync(join(dir, '00000000000000000000.index')).equals(fresh)).toBe(true);
  });

  it('keeps memory bounded: reading every segment caches at most maxResidentSegments of them', async () => {
    const dir = tempDir('wharf-index-');
    dirs.push(dir);
    const small = resolveLogOptions({ segmentBytes: 1000, indexIntervalBytes: 100 });
    const writer = await DiskLog.open(dir, small);
    for (let i = 0; i < 300; i++) await writer.append([rec(`value-${i}`, i)]);
    expect(writer.segmentCount).toBeGreaterThan(20);
    expect(writer.cachedSegmentCount).toBeLessThanOrEqual(4 + 1);
    await writer.close();
    const log = await DiskLog.open(dir, small, { maxResidentSegments: 2 });
    expect(log.cachedSegmentCount).toBe(1); // after open: only the active segment
    let offset = 0;
    while (offset < log.endOffset) {
      const got = await log.read(offset, { maxBytes: 500 });
      offset = got[got.length - 1].offset + 1;
      expect(log.cachedSegmentCount).toBeLessThanOrEqual(3);
    }
    expect(await log.offsetForTimestamp(150)).toBe(150);
    expect(log.cachedSegmentCount).toBeLessThanOrEqual(3);
    await log.close();
  });

  it('reads of older segments keep working with a small index cache', async () => {
    const { dir } = await closedLog();
    const log = await DiskLog.open(dir, options, { maxResidentSegments: 1 });
    for (let round = 0; round < 3; round++) {
      for (const from of [0, 30, 5, 50, 15])
        expect((await log.read(from, { maxBytes: 100, maxRecords: 1 }))[0].offset).toBe(from);
    }
    await log.close();
  });
});

async function forBoth(fn: (log: PartitionLog) => Promise<void>, opts: Partial<LogOptions>): Promise<void> {
  const dir = tempDir('wharf-ts-');
  dirs.push(dir);
  const disk = await DiskLog.open(dir, resolveLogOptions(opts));
  await fn(disk);
  await disk.close();
  const mem = await openMemoryStorage().openLog(['t'], resolveLogOptions(opts));
  await fn(mem);
}

describe('offsetForTimestamp', () => {
  it('finds the first offset with timestamp >= target across segments, endOffset when none', async () => {
    await forBoth(
      async (log) => {
        for (let i = 0; i < 50; i++)
          await log.append([rec(`a${i}`, 10_000 + i * 100), rec(`b${i}`, 10_000 + i * 100 + 50)]);
        expect(await log.offsetForTimestamp(0)).toBe(0);
        expect(await log.offsetForTimestamp(10_000)).toBe(0);
        expect(await log.offsetForTimestamp(10_001)).toBe(1);
        expect(await log.offsetForTimestamp(10_050)).toBe(1);
        expect(await log.offsetForTimestamp(12_520)).toBe(51);
        expect(await log.offsetForTimestamp(14_950)).toBe(99);
        expect(await log.offsetForTimestamp(14_951)).toBe(100);
      },
      { segmentBytes: 1000, indexIntervalBytes: 100 },
    );
  });

  it('returns the first record in log order when timestamps go backwards', async () => {
    await forBoth(
      async (log) => {
        const ts = [500, 100, 900, 200, 300, 1000, 50, 700];
        for (let round = 0; round < 5; round++) for (const t of ts) await log.append([rec('x', t + round)]);
        const all = await log.read(0, { maxBytes: 1 << 20 });
        for (const target of [0, 99, 150, 501, 800, 901, 1000, 1004, 1005]) {
          const expected = all.find((r) => r.timestampMs >= target)?.offset ?? log.endOffset;
          expect(await log.offsetForTimestamp(target)).toBe(expected);
        }
      },
      { segmentBytes: 500, indexIntervalBytes: 64 },
    );
  });
});

describe('read with wholeBatches', () => {
  it('returns the rest of the batch in which maxRecords is reached, and no further batch', async () => {
    await forBoth(
      async (log) => {
        await log.append(Array.from({ length: 10 }, (_, i) => rec(`a${i}`, 1000)));
        await log.append(Array.from({ length: 10 }, (_, i) => rec(`b${i}`, 1000)));
        const offsets = async (from: number, maxRecords: number, wholeBatches?: boolean): Promise<number[]> =>
          (await log.read(from, { maxBytes: 1 << 20, maxRecords, wholeBatches })).map((r) => r.offset);
        expect(await offsets(3, 2)).toEqual([3, 4]);
        expect(await offsets(3, 2, true)).toEqual([3, 4, 5, 6, 7, 8, 9]);
        expect(await offsets(3, 7, true)).toEqual([3, 4, 5, 6, 7, 8, 9]);
        expect(await offsets(3, 8, true)).toEqual(Array.from({ length: 17 }, (_, i) => 3 + i));
        await expect(log.read(0, { maxBytes: 100, wholeBatches: 'yes' as unknown as boolean })).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
        });
      },
      { segmentBytes: 1 << 20 },
    );
  });
});
