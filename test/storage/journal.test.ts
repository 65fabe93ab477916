// Journals: durable append, replay on open, torn tail dropped, corruption reported, atomic rewrite,
// group commit — on disk, and the same contract in memory.
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskJournal, openMemoryStorage, resolveJournalOptions, type Journal } from '../../src/storage/index.js';
import { dec, enc, expectWharfError, rejectionOf, removeDir, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

function journalPath(): string {
  const dir = tempDir('wharf-journal-');
  dirs.push(dir);
  return join(dir, 'state');
}

const options = resolveJournalOptions({});
const texts = (j: Journal) => [...j.entries()].map(dec);

const kinds: Array<[string, () => { open: () => Promise<Journal> }]> = [
  [
    'disk',
    () => {
      const path = journalPath();
      return { open: () => DiskJournal.open(path, options) };
    },
  ],
  [
    'memory',
    () => {
      const storage = openMemoryStorage();
      return { open: () => storage.openJournal(['q', 'state'], options) };
    },
  ],
];

describe.each(kinds)('%s journal', (_name, make) => {
  it('replays appended entries in order after a reopen', async () => {
    const { open } = make();
    const j = await open();
    expect(texts(j)).toEqual([]);
    await j.append(enc('a'));
    await Promise.all([j.append(enc('b')), j.append(enc('c'))]);
    expect(texts(j)).toEqual([]); // what was recovered on open: the journal keeps no copy of its appends
    const size = j.sizeBytes;
    expect(size).toBe(8 + 3 * 9);
    await j.close();
    const again = await open();
    expect(texts(again)).toEqual(['a', 'b', 'c']);
    expect(again.sizeBytes).toBe(size);
    await again.close();
  });

  it('rewrite replaces everything with the snapshot; later appends follow it', async () => {
    const { open } = make();
    const j = await open();
    await j.append(enc('1'));
    const before = j.append(enc('2')); // queued before the rewrite: replaced by it
    const rewrite = j.rewrite([enc('snapshot-a'), enc('snapshot-b')]);
    const after = j.append(enc('3')); // after the rewrite: kept
    await Promise.all([before, rewrite, after]);
    expect(texts(j)).toEqual([]); // as recovered on open
    await j.close();
    const again = await open();
    expect(texts(again)).toEqual(['snapshot-a', 'snapshot-b', '3']);
    await again.rewrite([]);
    expect(texts(again)).toEqual([]); // written to: what was recovered is let go
    await again.close();
    expect(texts(await open())).toEqual([]);
  });

  it('copies entries, so a caller reusing its buffer does not change the journal', async () => {
    const { open } = make();
    const j = await open();
    const buf = enc('orig');
    const p = j.append(buf);
    buf.write('XXXX');
    await p;
    await j.close();
    expect(texts(await open())).toEqual(['orig']);
  });

  it('rejects use after close with CLOSED', async () => {
    const { open } = make();
    const j = await open();
    await j.close();
    expectWharfError(await rejectionOf(j.append(enc('x'))), 'CLOSED');
    expectWharfError(await rejectionOf(j.rewrite([])), 'CLOSED');
  });
});

describe('disk journal recovery', () => {
  async function withEntries(n: number): Promise<string> {
    const path = journalPath();
    const j = await DiskJournal.open(path, options);
    for (let i = 0; i < n; i++) await j.append(enc(`entry-${i}`));
    await j.close();
    return path;
  }

  it('drops a torn tail entry and keeps appending after the good ones', async () => {
    const path = await withEntries(3);
    const size = fs.statSync(path).size;
    fs.truncateSync(path, size - 2);
    const j = await DiskJournal.open(path, options);
    expect(texts(j)).toEqual(['entry-0', 'entry-1']);
    expect(fs.statSync(path).size).toBe(size - (8 + 'entry-2'.length));
    await j.append(enc('entry-3'));
    await j.close();
    expect(texts(await DiskJournal.open(path, options))).toEqual(['entry-0', 'entry-1', 'entry-3']);
  });

  it('drops zeros and garbage after the last entry', async () => {
    for (const tail of [Buffer.alloc(100), Buffer.from([0, 0, 0, 0, 0, 0, 0, 5, 1, 2])]) {
      const path = await withEntries(2);
      fs.appendFileSync(path, tail);
      const j = await DiskJournal.open(path, options);
      expect(texts(j)).toEqual(['entry-0', 'entry-1']);
      await j.close();
    }
  });

  it('reports a corrupt entry followed by valid ones as CORRUPT_DATA with file and byte', async () => {
    const path = await withEntries(3);
    const bytes = fs.readFileSync(path);
    bytes[8 + 8 + 2] ^= 0xff; // inside entry 0's payload
    fs.writeFileSync(path, bytes);
    const err = expectWharfError(await rejectionOf(DiskJournal.open(path, options)), 'CORRUPT_DATA');
    expect(err.details).toMatchObject({ file: path, position: 8 });
    expect(err.message).toContain(path);
  });

  it('ignores a temporary file left by a rewrite that crashed before its rename', async () => {
    const path = await withEntries(2);
    fs.writeFileSync(path + '.tmp', 'half-written snapshot');
    const j = await DiskJournal.open(path, options);
    expect(texts(j)).toEqual(['entry-0', 'entry-1']);
    await j.rewrite([enc('new')]);
    expect(fs.existsSync(path + '.tmp')).toBe(false);
    await j.close();
  });

  it('opens a journal torn while being created as empty', async () => {
    const path = journalPath();
    fs.writeFileSync(path, Buffer.from('WJ'));
    const j = await DiskJournal.open(path, options);
    expect(texts(j)).toEqual([]);
    await j.append(enc('x'));
    await j.close();
    expect(texts(await DiskJournal.open(path, options))).toEqual(['x']);
  });

  it('group-commits concurrent appends', async () => {
    const path = journalPath();
    const j = await DiskJournal.open(path, options);
    await Promise.all(
      Array.from({ length: 10 }, async (_, a) => {
        for (let i = 0; i < 20; i++) await j.append(enc(`${a}:${i}`));
      }),
    );
    expect(j.fsyncCount).toBeLessThanOrEqual(200 / 5);
    await j.close();
    const again = await DiskJournal.open(path, options);
    expect([...again.entries()].length).toBe(200);
    await again.close();
  });
});
