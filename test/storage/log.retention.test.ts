// Segment roll (by size and by record age) and whole-segment deletion by retention time, retention
// bytes and truncateBefore, on both implementations. Time is injected: nothing sleeps.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskLog, MemoryLog, openMemoryStorage, resolveLogOptions, type LogOptions } from '../../src/storage/index.js';
import { rec, removeDir, tempDir } from './helpers.js';

type AnyLog = DiskLog | MemoryLog;
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

const kinds: Array<[string, (opts: Partial<LogOptions>, dir?: string) => Promise<AnyLog>]> = [
  ['disk', (opts, dir) => DiskLog.open(dir ?? mkdir(), resolveLogOptions(opts))],
  ['memory', async (opts) => (await openMemoryStorage().openLog(['t'], resolveLogOptions(opts))) as MemoryLog],
];

function mkdir(): string {
  const dir = tempDir('wharf-retention-');
  dirs.push(dir);
  return dir;
}

/** One-record batches of a 100-byte value: 61 header + 2 length + 107 record bytes. */
const BATCH_BYTES = 170;
const v100 = 'x'.repeat(100);

describe.each(kinds)('%s log: segment roll', (_name, open) => {
  it('rolls when the next batch would pass segmentBytes; the new segment is named by its base offset', async () => {
    const log = await open({ segmentBytes: BATCH_BYTES * 3 });
    for (let i = 0; i < 10; i++) await log.append([rec(v100, 1000)]);
    expect(log.sizeBytes).toBe(10 * BATCH_BYTES);
    expect(log.segmentBaseOffsets).toEqual([0, 3, 6, 9]);
    await log.close();
  });

  it('puts a batch larger than segmentBytes alone into a segment', async () => {
    const log = await open({ segmentBytes: 300 });
    await log.append([rec('small', 1)]);
    await log.append([rec('y'.repeat(1000), 2)]);
    await log.append([rec('small', 3)]);
    expect(log.segmentBaseOffsets).toEqual([0, 1, 2]);
    expect((await log.read(1, { maxBytes: 10 })).length).toBe(1); // at least one batch, even over maxBytes
    await log.close();
  });

  it('rolls when a record is more than segmentMs newer than the segment first batch', async () => {
    const log = await open({ segmentMs: 1000 });
    await log.append([rec('a', 5000)]);
    await log.append([rec('b', 5900)]);
    await log.append([rec('c', 6000)]); // 1000 after the first: not more than segmentMs
    await log.append([rec('d', 6001)]); // 1001 after: a new segment
    await log.append([rec('e', 6500)]);
    await log.append([rec('f', 7002)]);
    expect(log.segmentBaseOffsets).toEqual([0, 3, 5]);
    await log.close();
  });
});

describe.each(kinds)('%s log: retention', (_name, open) => {
  it('deletes whole segments whose newest record is older than retentionMs', async () => {
    const log = await open({ segmentBytes: BATCH_BYTES * 2, retentionMs: 10_000 });
    for (let i = 0; i < 6; i++) await log.append([rec(v100, 1000 * (i + 1))]); // segments [0,1] [2,3] [4,5]
    expect(log.segmentBaseOffsets).toEqual([0, 2, 4]);
    expect(await log.applyRetention(12_000)).toBe(0); // segment 0 newest 2000: 10000 old, not more
    expect(await log.applyRetention(12_001)).toBe(1);
    expect(log.startOffset).toBe(2);
    expect((await log.read(0, { maxBytes: 1 << 20 }))[0].offset).toBe(2); // before start: read from start
    expect(await log.applyRetention(15_500)).toBe(1);
    expect(log.startOffset).toBe(4);
    expect(log.endOffset).toBe(6);
    await log.close();
  });

  it('deletes the active segment too when all of it expired, keeping the end offset', async () => {
    const dir = mkdir();
    const log = await open({ retentionMs: 1000 }, dir);
    await log.append([rec('old', 1000), rec('older', 900)]);
    expect(await log.applyRetention(2001)).toBe(1);
    expect(log.startOffset).toBe(2);
    expect(log.endOffset).toBe(2);
    expect(log.sizeBytes).toBe(0);
    expect(await log.read(0, { maxBytes: 1 << 20 })).toEqual([]);
    expect(await log.applyRetention(99_999)).toBe(0); // an empty active segment stays
    await log.close();
    if (log instanceof DiskLog) {
      expect(fs.readdirSync(dir).filter((n) => n.endsWith('.log'))).toEqual(['00000000000000000002.log']);
      const again = await DiskLog.open(dir, resolveLogOptions({ retentionMs: 1000 }));
      expect([again.startOffset, again.endOffset]).toEqual([2, 2]);
      expect((await again.append([rec('new', 5000)])).baseOffset).toBe(2);
      await again.close();
    }
  });

  it('deletes the oldest segments while the rest still holds at least retentionBytes', async () => {
    const log = await open({ segmentBytes: BATCH_BYTES * 2, retentionBytes: BATCH_BYTES * 3 });
    for (let i = 0; i < 7; i++) await log.append([rec(v100, 1000)]); // [0,1] [2,3] [4,5] [6]
    expect(await log.applyRetention(0)).toBe(2); // 7 batches - 3 allowed = 4 over: two whole segments
    expect(log.startOffset).toBe(4);
    expect(log.sizeBytes).toBe(3 * BATCH_BYTES);
    expect(await log.applyRetention(0)).toBe(0);
    await log.close();
  });

  it('truncateBefore deletes only segments wholly below the offset', async () => {
    const log = await open({ segmentBytes: BATCH_BYTES * 2 });
    for (let i = 0; i < 6; i++) await log.append([rec(v100, 1000)]); // [0,1] [2,3] [4,5]
    expect(await log.truncateBefore(1)).toBe(0);
    expect(await log.truncateBefore(3)).toBe(1);
    expect(log.startOffset).toBe(2);
    expect(await log.truncateBefore(6)).toBe(2); // everything settled: the active segment goes too
    expect([log.startOffset, log.endOffset, log.sizeBytes]).toEqual([6, 6, 0]);
    expect((await log.append([rec('next', 1)])).baseOffset).toBe(6);
    await log.close();
  });

  it('a log without retention settings keeps everything', async () => {
    const log = await open({ segmentBytes: BATCH_BYTES });
    for (let i = 0; i < 4; i++) await log.append([rec(v100, 1)]);
    expect(await log.applyRetention(Number.MAX_SAFE_INTEGER)).toBe(0);
    await log.close();
  });
});

describe('disk retention files', () => {
  it('removes the segment files with their indexes', async () => {
    const dir = mkdir();
    const log = await DiskLog.open(dir, resolveLogOptions({ segmentBytes: BATCH_BYTES * 2, indexIntervalBytes: 1 }));
    for (let i = 0; i < 6; i++) await log.append([rec(v100, 1000)]);
    await log.truncateBefore(4);
    await log.close(); // the active segment's index files are written at roll and close
    expect(fs.readdirSync(dir).sort()).toEqual([
      '00000000000000000004.index',
      '00000000000000000004.log',
      '00000000000000000004.timeindex',
    ]);
  });
});

// Deleting every segment replaces the active one: appends racing that must land in the log, never in
// a segment being deleted (which failed the log for good).
describe.each(kinds)('%s log: deleting every segment while appends arrive', (_name, open) => {
  for (const fsync of ['always', 'never'] as const) {
    it(`an append made while truncateBefore(endOffset) runs is stored, and the log goes on (fsync ${fsync})`, async () => {
      const log = await open({ fsync });
      for (let i = 0; i < 3; i++) await log.append([rec(`v${i}`)]);
      const truncated = log.truncateBefore(log.endOffset);
      await new Promise((r) => setImmediate(r)); // the truncation is between its awaits now
      const appended = log.append([rec('new')]);
      expect(await truncated).toBe(1);
      expect(await appended).toEqual({ baseOffset: 3, lastOffset: 3 });
      expect(await log.append([rec('later')])).toEqual({ baseOffset: 4, lastOffset: 4 });
      expect(log.startOffset).toBe(3);
      expect((await log.read(3, { maxBytes: 1 << 20 })).map((r) => Buffer.from(r.value!).toString())).toEqual([
        'new',
        'later',
      ]);
      await log.close();
    });
  }

  it('an append placed while retention waits for its turn keeps its segment, whatever its timestamp', async () => {
    const log = await open({ retentionMs: 1_000 });
    await log.append([rec('old', 1_000)]);
    // Retention is asked for first; the append (with an old timestamp a producer may give) is placed
    // in the active segment before retention runs, and written after it.
    const retention = log.applyRetention(100_000);
    const appended = log.append([rec('old too', 1_000)]);
    await retention;
    expect(await appended).toEqual({ baseOffset: 1, lastOffset: 1 });
    expect(await log.append([rec('next', 100_000)])).toEqual({ baseOffset: 2, lastOffset: 2 });
    expect(
      (await log.read(log.startOffset, { maxBytes: 1 << 20 })).map((r) => Buffer.from(r.value!).toString()),
    ).toContain('old too');
    await log.close();
  });
});
