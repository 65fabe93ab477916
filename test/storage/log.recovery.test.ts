// Recovery on open: torn tails are cut, corruption is reported with file and byte, and a damaged
// batch is never served as records.
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskLog, resolveLogOptions, type LogRecord } from '../../src/storage/index.js';
import { dec, expectWharfError, makeCrashImage, rec, rejectionOf, removeDir, SEGMENT_0 } from './helpers.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

async function crash(batchCount: number, options = {}) {
  const image = await makeCrashImage(batchCount, options);
  dirs.push(image.dir);
  return image;
}

const open = (dir: string, options = {}, extras = {}) => DiskLog.open(dir, resolveLogOptions(options), extras);
const values = (records: LogRecord[]) => records.map((r) => dec(r.value));
const segmentPath = (dir: string) => join(dir, SEGMENT_0);

describe('recovery of a torn tail', () => {
  it('cuts a partially written last batch; earlier records stay and the next append continues', async () => {
    const { dir, batchPositions } = await crash(5);
    fs.truncateSync(segmentPath(dir), batchPositions[5] - 7); // the last batch lost its last 7 bytes
    const log = await open(dir);
    expect(log.endOffset).toBe(4);
    expect(values(await log.read(0, { maxBytes: 1 << 20 }))).toEqual(['v0', 'v1', 'v2', 'v3']);
    expect(fs.statSync(segmentPath(dir)).size).toBe(batchPositions[4]);
    expect(await log.append([rec('after')])).toEqual({ baseOffset: 4, lastOffset: 4 });
    await log.close();
    const again = await open(dir);
    expect(values(await again.read(0, { maxBytes: 1 << 20 }))).toEqual(['v0', 'v1', 'v2', 'v3', 'after']);
    await again.close();
  });

  it('cuts garbage and zeros written after the last batch', async () => {
    for (const tail of [Buffer.alloc(4096, 0), Buffer.from('not a record batch at all, just noise'.repeat(5))]) {
      const { dir, batchPositions } = await crash(3);
      fs.appendFileSync(segmentPath(dir), tail);
      const log = await open(dir);
      expect(log.endOffset).toBe(3);
      expect(fs.statSync(segmentPath(dir)).size).toBe(batchPositions[3]);
      expect((await log.append([rec('next')])).baseOffset).toBe(3);
      await log.close();
    }
  });

  it('cuts a last batch whose CRC does not match (a torn page inside it)', async () => {
    const { dir, batchPositions } = await crash(4);
    const fd = fs.openSync(segmentPath(dir), 'r+');
    fs.writeSync(fd, Buffer.from([0xff, 0xff]), 0, 2, batchPositions[3] + 65);
    fs.closeSync(fd);
    const log = await open(dir);
    expect(log.endOffset).toBe(3);
    expect(values(await log.read(0, { maxBytes: 1 << 20 }))).toEqual(['v0', 'v1', 'v2']);
    await log.close();
  });

  it('cuts fewer bytes than a batch header', async () => {
    const { dir } = await crash(2);
    fs.appendFileSync(segmentPath(dir), Buffer.from([0, 0, 0, 0, 0, 0, 0, 2, 0, 0]));
    const log = await open(dir);
    expect(log.endOffset).toBe(2);
    await log.close();
  });

  it('recovers an index entry that points past a cut tail by rebuilding the index', async () => {
    // Index every batch, close cleanly (index files written), then lose the last batch.
    const { dir, batchPositions } = await crash(6, { indexIntervalBytes: 1 });
    const log0 = await open(dir, { indexIntervalBytes: 1 });
    await log0.close();
    fs.truncateSync(segmentPath(dir), batchPositions[6] - 1);
    const log = await open(dir, { indexIntervalBytes: 1 });
    expect(log.endOffset).toBe(5);
    expect(values(await log.read(3, { maxBytes: 1 << 20 }))).toEqual(['v3', 'v4']);
    await log.close();
  });
});

describe('corruption is reported, never served', () => {
  it('fails the open with CORRUPT_DATA naming file and byte when a bad batch is followed by valid ones', async () => {
    const { dir, batchPositions } = await crash(6);
    const fd = fs.openSync(segmentPath(dir), 'r+');
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, batchPositions[2] + 64); // inside batch 2's records
    fs.closeSync(fd);
    const sizeBefore = fs.statSync(segmentPath(dir)).size;
    const err = expectWharfError(await rejectionOf(open(dir)), 'CORRUPT_DATA');
    expect(err.details).toMatchObject({ file: segmentPath(dir), position: batchPositions[2] });
    expect(err.message).toContain(SEGMENT_0);
    expect(err.message).toContain(`byte ${batchPositions[2]}`);
    expect(fs.statSync(segmentPath(dir)).size).toBe(sizeBefore); // nothing was cut
  });

  it('reports a corrupt header (bad batch length) followed by valid data too', async () => {
    const { dir, batchPositions } = await crash(4);
    const fd = fs.openSync(segmentPath(dir), 'r+');
    fs.writeSync(fd, Buffer.from([0x7f]), 0, 1, batchPositions[1] + 8); // batchLength's high byte
    fs.closeSync(fd);
    const err = expectWharfError(await rejectionOf(open(dir)), 'CORRUPT_DATA');
    expect(err.details).toMatchObject({ position: batchPositions[1] });
  });

  it('throws CORRUPT_DATA from a read that reaches a corrupt batch in the indexed part of a log', async () => {
    const { dir, batchPositions } = await crash(6, { indexIntervalBytes: 1 });
    const clean = await open(dir, { indexIntervalBytes: 1 });
    await clean.close(); // the index files now cover every batch: open does not rescan them
    const fd = fs.openSync(segmentPath(dir), 'r+');
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, batchPositions[1] + 64);
    fs.closeSync(fd);
    const log = await open(dir, { indexIntervalBytes: 1 });
    const err = expectWharfError(await rejectionOf(log.read(0, { maxBytes: 1 << 20 })), 'CORRUPT_DATA');
    expect(err.details).toMatchObject({ file: segmentPath(dir), position: batchPositions[1] });
    expectWharfError(await rejectionOf(log.readBatches(1, { maxBytes: 1 << 20 })), 'CORRUPT_DATA');
    // Records before and after the damage stay readable.
    expect(values(await log.read(0, { maxBytes: 1, maxRecords: 1 }))).toEqual(['v0']);
    expect(values(await log.read(2, { maxBytes: 1 << 20 }))).toEqual(['v2', 'v3', 'v4', 'v5']);
    await log.close();
    // A full recovery scan finds it at open.
    const err2 = expectWharfError(
      await rejectionOf(open(dir, { indexIntervalBytes: 1 }, { fullRecoveryScan: true })),
      'CORRUPT_DATA',
    );
    expect(err2.details).toMatchObject({ position: batchPositions[1] });
  });

  it('reports a torn end of a sealed (non-last) segment instead of cutting it', async () => {
    const { dir } = await crash(12, { segmentBytes: 400 });
    const segments = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.log'))
      .sort();
    expect(segments.length).toBeGreaterThan(1);
    const first = join(dir, segments[0]);
    fs.truncateSync(first, fs.statSync(first).size - 3);
    fs.rmSync(first.replace('.log', '.index')); // no index: the whole segment is scanned
    const err = expectWharfError(await rejectionOf(open(dir)), 'CORRUPT_DATA');
    expect(err.details).toMatchObject({ file: first });
  });

  it.each([
    ['after a crash (the open scans every batch)', false],
    ['after a clean close (reads check what the open trusts)', true],
  ])(
    'never returns a record whose stored bytes were altered, whichever byte flips, %s',
    async (_label, closeCleanly) => {
      const options = { indexIntervalBytes: 1 };
      const { dir: pristine, batchPositions } = await crash(5, options);
      if (closeCleanly) await (await open(pristine, options)).close();
      const expected = ['v0', 'v1', 'v2', 'v3', 'v4'];
      const size = batchPositions[5];
      for (let position = 0; position < size; position += 3) {
        const dir = pristine + '-flip';
        fs.rmSync(dir, { recursive: true, force: true });
        fs.cpSync(pristine, dir, { recursive: true });
        dirs.push(dir);
        const fd = fs.openSync(segmentPath(dir), 'r+');
        const byte = Buffer.alloc(1);
        fs.readSync(fd, byte, 0, 1, position);
        byte[0] ^= 0x10;
        fs.writeSync(fd, byte, 0, 1, position);
        fs.closeSync(fd);
        let log: DiskLog;
        try {
          log = await open(dir, options);
        } catch (err) {
          expectWharfError(err, 'CORRUPT_DATA');
          continue;
        }
        try {
          const got = await log.read(0, { maxBytes: 1 << 20 });
          // Whatever is served is exactly what was written (a cut tail may serve fewer).
          expect(got.map((r) => [r.offset, dec(r.value), r.timestampMs])).toEqual(
            expected.slice(0, got.length).map((v, i) => [i, v, 1000 + i]),
          );
        } catch (err) {
          expectWharfError(err, 'CORRUPT_DATA');
        } finally {
          await log.close();
        }
      }
    },
  );
});
