// Zeros written ahead of a durable file's data (fsync 'always'): readers never see them, a sealed
// segment and a closed file end at their data, and a crash that leaves them opens cleanly.
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DiskJournal,
  DiskLog,
  resolveJournalOptions,
  resolveLogOptions,
  type LogRecord,
} from '../../src/storage/index.js';
import { DSYNC_FLAG } from '../../src/storage/file-io.js';
import { parseSegmentLogName } from '../../src/storage/segment.js';
import { dec, enc, rec, removeDir, SEGMENT_0, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));
const newDir = (prefix: string): string => {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
};

const values = (records: LogRecord[]) => records.map((r) => dec(r.value));
const sizeOf = (path: string) => fs.statSync(path).size;
const segmentFiles = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((n) => parseSegmentLogName(n) !== null)
    .sort();

/** Bytes of a log's segments as its reads see them, one total per file. */
async function dataBytesPerSegment(log: DiskLog): Promise<number> {
  let total = 0;
  for (const b of await log.readBatches(0, { maxBytes: 64 << 20 })) total += b.byteLength;
  return total;
}

// Preallocation serves writes through O_DSYNC, which fsync 'always' uses where the platform has it.
describe.skipIf(DSYNC_FLAG === null)('a log under fsync always', () => {
  it('keeps zeros ahead of the active segment while open and ends the file at its data on close', async () => {
    const dir = newDir('wharf-prealloc-log-');
    const log = await DiskLog.open(dir, resolveLogOptions({ fsync: 'always' }));
    for (let i = 0; i < 20; i++) await log.append([rec(`v${i}`)]);
    const dataBytes = await dataBytesPerSegment(log);
    expect(sizeOf(join(dir, SEGMENT_0))).toBeGreaterThan(dataBytes);
    expect(log.sizeBytes).toBe(dataBytes);
    await log.close();
    expect(sizeOf(join(dir, SEGMENT_0))).toBe(dataBytes);
    const again = await DiskLog.open(dir, resolveLogOptions({ fsync: 'always' }));
    expect(values(await again.read(0, { maxBytes: 1 << 20 }))).toHaveLength(20);
    await again.close();
  });

  it('trims every sealed segment to its data, so only the last one may end in zeros after a crash', async () => {
    const dir = newDir('wharf-prealloc-roll-');
    const options = resolveLogOptions({ fsync: 'always', segmentBytes: 4096 });
    const log = await DiskLog.open(dir, options);
    const payload = 'x'.repeat(700);
    for (let i = 0; i < 30; i++) await log.append([rec(`${i}:${payload}`)]);
    const names = segmentFiles(dir);
    expect(names.length).toBeGreaterThan(3);
    // Sealed segments: the file is exactly the batches in it (read back through the log).
    const bases = names.map((n) => parseSegmentLogName(n)!);
    for (let s = 0; s + 1 < names.length; s++) {
      let bytes = 0;
      for (const b of await log.readBatches(bases[s], { maxBytes: 1 << 20 })) {
        const baseOffset = Number(Buffer.from(b.buffer, b.byteOffset, 8).readBigInt64BE(0));
        if (baseOffset >= bases[s + 1]) break;
        bytes += b.byteLength;
      }
      expect(sizeOf(join(dir, names[s]))).toBe(bytes);
    }
    // A crash now: the copy opens, with every record, and the last segment's zeros cut.
    const image = newDir('wharf-prealloc-roll-crash-');
    fs.cpSync(dir, image, { recursive: true });
    await log.close();
    const recovered = await DiskLog.open(image, options);
    expect(recovered.endOffset).toBe(30);
    expect(values(await recovered.read(0, { maxBytes: 1 << 20 })).map((v) => v!.split(':')[0])).toEqual(
      Array.from({ length: 30 }, (_, i) => String(i)),
    );
    await recovered.close();
  });

  it('opens a crash image whose active segment ends in zeros: nothing lost, appends continue', async () => {
    const dir = newDir('wharf-prealloc-crash-');
    const log = await DiskLog.open(dir, resolveLogOptions({ fsync: 'always' }));
    for (let i = 0; i < 10; i++) await log.append([rec(`v${i}`)]);
    const dataBytes = await dataBytesPerSegment(log);
    const image = newDir('wharf-prealloc-crash-image-');
    fs.cpSync(dir, image, { recursive: true });
    await log.close();
    expect(sizeOf(join(image, SEGMENT_0))).toBeGreaterThan(dataBytes);

    const recovered = await DiskLog.open(image, resolveLogOptions({ fsync: 'always' }));
    expect(recovered.endOffset).toBe(10);
    expect(sizeOf(join(image, SEGMENT_0))).toBe(dataBytes);
    expect(await recovered.append([rec('after')])).toEqual({ baseOffset: 10, lastOffset: 10 });
    await recovered.close();
    const again = await DiskLog.open(image, resolveLogOptions({ fsync: 'always' }));
    expect(values(await again.read(0, { maxBytes: 1 << 20 }))).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `v${i}`),
      'after',
    ]);
    await again.close();
  });
});

describe.skipIf(DSYNC_FLAG === null)('a journal under fsync always', () => {
  const options = resolveJournalOptions({ fsync: 'always' });

  it('keeps zeros ahead while open; a crash image replays every entry; close ends the file at its data', async () => {
    const path = join(newDir('wharf-prealloc-journal-'), 'state');
    const journal = await DiskJournal.open(path, options);
    for (let i = 0; i < 50; i++) await journal.append(enc(`e${i}`));
    const dataBytes = journal.sizeBytes;
    expect(sizeOf(path)).toBeGreaterThan(dataBytes);

    const imagePath = join(newDir('wharf-prealloc-journal-crash-'), 'state');
    fs.copyFileSync(path, imagePath);
    await journal.close();
    expect(sizeOf(path)).toBe(dataBytes);

    const recovered = await DiskJournal.open(imagePath, options);
    expect([...recovered.entries()].map(dec)).toEqual(Array.from({ length: 50 }, (_, i) => `e${i}`));
    expect(sizeOf(imagePath)).toBe(dataBytes);
    await recovered.append(enc('after'));
    await recovered.close();
    const again = await DiskJournal.open(imagePath, options);
    expect([...again.entries()].map(dec).slice(-2)).toEqual(['e49', 'after']);
    await again.close();
  });

  it('starts the rewritten file without the old zeros and keeps appending after it', async () => {
    const path = join(newDir('wharf-prealloc-rewrite-'), 'state');
    const journal = await DiskJournal.open(path, options);
    for (let i = 0; i < 20; i++) await journal.append(enc(`old${i}`));
    await journal.rewrite([enc('snapshot')]);
    for (let i = 0; i < 5; i++) await journal.append(enc(`new${i}`));
    const dataBytes = journal.sizeBytes;
    await journal.close();
    expect(sizeOf(path)).toBe(dataBytes);
    const again = await DiskJournal.open(path, options);
    expect([...again.entries()].map(dec)).toEqual(['snapshot', 'new0', 'new1', 'new2', 'new3', 'new4']);
    await again.close();
  });
});
