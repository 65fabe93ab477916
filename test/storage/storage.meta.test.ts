// Storage namespaces: atomic meta files, list and remove, path validation and single opening —
// the same on disk and in memory.
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDiskStorage, openMemoryStorage, type Storage } from '../../src/storage/index.js';
import { dec, enc, expectWharfError, rec, rejectionOf, removeDir, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

const kinds: Array<[string, () => Promise<Storage>]> = [
  [
    'disk',
    () => {
      const dir = tempDir('wharf-meta-');
      dirs.push(dir);
      return openDiskStorage(dir);
    },
  ],
  ['memory', async () => openMemoryStorage()],
];

describe.each(kinds)('%s storage', (name, open) => {
  it('writes, overwrites and reads meta; null when absent', async () => {
    const s = await open();
    expect(await s.readMeta(['topics', 'a', 'meta'])).toBeNull();
    await s.writeMeta(['topics', 'a', 'meta'], enc('v1'));
    await s.writeMeta(['topics', 'a', 'meta'], enc('v2'));
    expect(dec(await s.readMeta(['topics', 'a', 'meta']))).toBe('v2');
    await s.close();
  });

  it('lists children (sorted, [] when absent) and removes a whole subtree', async () => {
    const s = await open();
    const log = await s.openLog(['topics', 'orders', '1'], {} as never);
    await log.append([rec('x')]);
    await log.close();
    await s.writeMeta(['topics', 'orders', 'meta'], enc('{}'));
    await s.writeMeta(['topics', 'billing', 'meta'], enc('{}'));
    expect(await s.list(['topics'])).toEqual(['billing', 'orders']);
    expect(await s.list(['topics', 'orders'])).toEqual(['1', 'meta']);
    expect(await s.list(['nothing', 'here'])).toEqual([]);
    expect(await s.list([])).toEqual(['topics']); // the LOCK file is not listed
    await s.remove(['topics', 'orders']);
    expect(await s.list(['topics'])).toEqual(['billing']);
    const reopened = await s.openLog(['topics', 'orders', '1'], {} as never);
    expect(reopened.endOffset).toBe(0);
    await reopened.close();
    await s.close();
  });

  it('refuses to open a path twice or remove an open one (CONFLICT)', async () => {
    const s = await open();
    const log = await s.openLog(['t', '0'], {} as never);
    expectWharfError(await rejectionOf(s.openLog(['t', '0'], {} as never)), 'CONFLICT');
    expectWharfError(await rejectionOf(s.remove(['t'])), 'CONFLICT');
    await log.close();
    await s.remove(['t']);
    await s.close();
  });

  it('rejects paths that are not arrays of valid names (INVALID_ARGUMENT)', async () => {
    const s = await open();
    for (const bad of [[], ['..'], ['a/b'], ['ok', ''], ['LOCK'], 'topics' as unknown as string[]]) {
      expectWharfError(await rejectionOf(s.readMeta(bad)), 'INVALID_ARGUMENT');
      expectWharfError(await rejectionOf(s.openLog(bad, {} as never)), 'INVALID_ARGUMENT');
    }
    await s.close();
  });

  it('closes the logs and journals still open, then refuses use with CLOSED', async () => {
    const s = await open();
    const log = await s.openLog(['t', '0'], {} as never);
    const journal = await s.openJournal(['j'], { fsync: 'always', fsyncIntervalMs: 1000 });
    await s.close();
    expectWharfError(await rejectionOf(log.append([rec('x')])), 'CLOSED');
    expectWharfError(await rejectionOf(journal.append(enc('x'))), 'CLOSED');
    expectWharfError(await rejectionOf(s.readMeta(['m'])), 'CLOSED');
    expect(s.kind).toBe(name);
  });
});

describe('disk meta files', () => {
  it('leave no temporary file behind, and a crashed write leaves the old content', async () => {
    const dir = tempDir('wharf-meta-');
    dirs.push(dir);
    const s = await openDiskStorage(dir);
    await s.writeMeta(['m'], enc('old'));
    fs.writeFileSync(join(dir, 'm.tmp'), 'half of the new content'); // a crash between write and rename
    expect(dec(await s.readMeta(['m']))).toBe('old');
    expect(await s.list([])).toEqual(['m']);
    await s.writeMeta(['m'], enc('new'));
    expect(fs.readdirSync(dir).sort()).toEqual(['LOCK', 'm']);
    await s.close();
  });
});
