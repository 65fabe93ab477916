// Reads end where a batch starts: the offset index's position lookups, the read-size rule
// (alignedReadBytes), and a log whose takes read each large batch once, not again in part.
import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DiskLog, resolveLogOptions } from '../../src/storage/index.js';
import { OffsetIndex } from '../../src/storage/offset-index.js';
import { alignedReadBytes } from '../../src/storage/segment-reader.js';
import { rec, removeDir, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  dirs.splice(0).forEach(removeDir);
});

function indexAt(...positions: number[]): OffsetIndex {
  const index = new OffsetIndex();
  positions.forEach((p, i) => index.append(i * 10, p));
  return index;
}

describe('OffsetIndex position lookups', () => {
  const index = indexAt(0, 100, 250, 700);
  it('finds the last indexed start at or before a position', () => {
    expect(index.lastPositionAtOrBefore(0)).toBe(0);
    expect(index.lastPositionAtOrBefore(99)).toBe(0);
    expect(index.lastPositionAtOrBefore(100)).toBe(100);
    expect(index.lastPositionAtOrBefore(699)).toBe(250);
    expect(index.lastPositionAtOrBefore(10_000)).toBe(700);
    expect(new OffsetIndex().lastPositionAtOrBefore(5)).toBe(-1);
  });
  it('finds the first indexed start after a position', () => {
    expect(index.nextPositionAfter(0)).toBe(100);
    expect(index.nextPositionAfter(100)).toBe(250);
    expect(index.nextPositionAfter(600)).toBe(700);
    expect(index.nextPositionAfter(700)).toBe(-1);
    expect(new OffsetIndex().nextPositionAfter(0)).toBe(-1);
  });
});

describe('alignedReadBytes', () => {
  // Batches start at 0, 100, 250 and 700; the data ends at 1000.
  const index = indexAt(0, 100, 250, 700);
  it('ends a read at the last batch start it reaches', () => {
    expect(alignedReadBytes(index, 0, 300, 1000, 300, false, false)).toBe(250);
    expect(alignedReadBytes(index, 100, 650, 1000, 650, true, false)).toBe(600);
  });
  it('reads to the end of the data as asked', () => {
    expect(alignedReadBytes(index, 250, 800, 1000, 800, true, true)).toBe(800);
  });
  it('reads a first batch larger than asked whole, in one read, when an index entry bounds it', () => {
    expect(alignedReadBytes(index, 250, 100, 1000, 100, false, false)).toBe(450);
  });
  it('reads as asked where no index entry bounds the first batch (no index, or a far one)', () => {
    expect(alignedReadBytes(indexAt(0), 0, 64, 1000, 64, false, false)).toBe(64);
    expect(alignedReadBytes(indexAt(0, 20 * 1024 * 1024), 0, 4096, 64 * 1024 * 1024, 4096, false, false)).toBe(4096);
  });
  it('after a batch, a plain read reads as asked (it fills its budget exactly)', () => {
    expect(alignedReadBytes(index, 250, 100, 1000, 100, true, false)).toBe(100);
  });
  it('after a batch, a whole-batches read takes the next stretch if it fits, else stops', () => {
    expect(alignedReadBytes(index, 250, 100, 1000, 500, true, true)).toBe(450);
    expect(alignedReadBytes(index, 250, 100, 1000, 100, true, true)).toBe(0);
    expect(alignedReadBytes(index, 700, 100, 1000, 400, true, true)).toBe(300);
    expect(alignedReadBytes(index, 700, 100, 1000, 100, true, true)).toBe(0);
  });
});

describe('reading large batches', () => {
  it('fills a plain read to its budget', async () => {
    const dir = tempDir('wharf-read-align-');
    dirs.push(dir);
    const log = await DiskLog.open(dir, resolveLogOptions({ segmentBytes: 64 << 20, indexIntervalBytes: 4096 }));
    for (let b = 0; b < 3; b++)
      await log.append(Array.from({ length: 100 }, (_, i) => rec(`b${b}-${i}-${'x'.repeat(1000)}`)));
    const batchBytes = log.sizeBytes / 3;
    // 1.5 batches of budget: the first batch only.
    expect((await log.read(0, { maxBytes: Math.floor(batchBytes * 1.5) })).length).toBe(100);
    // 2.5 batches: two.
    expect((await log.read(0, { maxBytes: Math.floor(batchBytes * 2.5) })).length).toBe(200);
    await log.close();
  });

  it('reads each batch once across takes that end between batches', async () => {
    const dir = tempDir('wharf-read-align-');
    dirs.push(dir);
    const log = await DiskLog.open(dir, resolveLogOptions({ segmentBytes: 64 << 20, indexIntervalBytes: 4096 }));
    const batchCount = 6;
    const recordsPerBatch = 300;
    for (let b = 0; b < batchCount; b++) {
      await log.append(Array.from({ length: recordsPerBatch }, (_, i) => rec(`b${b}-${i}-${'x'.repeat(1000)}`)));
    }
    const logBytes = log.sizeBytes;
    const batchBytes = logBytes / batchCount;
    // Counts the bytes asked of every positioned read (file-io.ts reads through fs.read).
    const original = fs.read.bind(fs) as (...args: unknown[]) => void;
    let bytesRead = 0;
    vi.spyOn(fs, 'read').mockImplementation(((...args: unknown[]) => {
      bytesRead += args[3] as number;
      original(...args);
    }) as unknown as typeof fs.read);
    let from = 0;
    let takes = 0;
    // Like a queue's cursor: whole batches, a budget of 1.5 batches per take.
    while (from < batchCount * recordsPerBatch) {
      const got = await log.read(from, {
        maxBytes: Math.floor(batchBytes * 1.5),
        maxRecords: 1000,
        wholeBatches: true,
      });
      expect(got[0].offset).toBe(from);
      from = got[got.length - 1].offset + 1;
      takes++;
    }
    expect(takes).toBe(batchCount);
    // Each batch whole, once: a whole-batches read stops at a batch boundary rather than read a part.
    expect(bytesRead).toBe(logBytes);
    await log.close();
  });
});
