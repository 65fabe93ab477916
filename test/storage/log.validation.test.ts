// Bad input is rejected with INVALID_ARGUMENT before anything is written; a closed log says CLOSED.
import { afterEach, describe, expect, it } from 'vitest';
import {
  DiskLog,
  MemoryLog,
  openMemoryStorage,
  resolveLogOptions,
  type PartitionLog,
} from '../../src/storage/index.js';
import { enc, expectWharfError, rec, rejectionOf, removeDir, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

const kinds: Array<[string, () => Promise<PartitionLog>]> = [
  [
    'disk',
    () => {
      const dir = tempDir('wharf-valid-');
      dirs.push(dir);
      return DiskLog.open(dir, resolveLogOptions({}));
    },
  ],
  ['memory', async () => (await openMemoryStorage().openLog(['t'], resolveLogOptions({}))) as MemoryLog],
];

describe.each(kinds)('%s log input checks', (_name, open) => {
  it('rejects bad offsets, budgets and timestamps with INVALID_ARGUMENT', async () => {
    const log = await open();
    await log.append([rec('a')]);
    const bad: Array<() => Promise<unknown>> = [
      () => log.read(-1, { maxBytes: 100 }),
      () => log.read(1.5, { maxBytes: 100 }),
      () => log.read(Number.NaN, { maxBytes: 100 }),
      () => log.read('0' as unknown as number, { maxBytes: 100 }),
      () => log.read(0, { maxBytes: -1 }),
      () => log.read(0, { maxBytes: 0 }),
      () => log.read(0, { maxBytes: 2.5 }),
      () => log.read(0, { maxBytes: 100, maxRecords: 0 }),
      () => log.read(0, undefined as never),
      () => log.readBatches(-5, { maxBytes: 100 }),
      () => log.offsetForTimestamp(1.5),
      () => log.truncateBefore(-1),
      () => log.applyRetention(Number.NaN),
      () => log.append([]),
      () => log.append('x' as never),
      () => log.append([{ ...rec('a'), timestampMs: -1 }]),
      () => log.append([{ ...rec('a'), timestampMs: 1.5 }]),
      () => log.append([{ ...rec('a'), timestampMs: 2 ** 53 }]),
      () => log.append([{ ...rec('a'), key: 'k' as never }]),
      () => log.append([{ ...rec('a'), headers: [{ key: 1 as never, value: enc('v') }] }]),
      () => log.append([rec('a')], { producerId: 1, producerEpoch: 70_000, baseSequence: 0 }),
    ];
    for (const call of bad) expectWharfError(await rejectionOf(call()), 'INVALID_ARGUMENT');
    expect(log.endOffset).toBe(1); // nothing was assigned an offset
    await log.close();
  });

  it('rejects everything after close with CLOSED', async () => {
    const log = await open();
    await log.close();
    await log.close(); // idempotent
    for (const call of [
      () => log.append([rec('a')]),
      () => log.read(0, { maxBytes: 1 }),
      () => log.readBatches(0, { maxBytes: 1 }),
      () => log.offsetForTimestamp(0),
      () => log.applyRetention(0),
      () => log.truncateBefore(0),
      () => log.flush(),
    ])
      expectWharfError(await rejectionOf(call()), 'CLOSED');
  });

  it('appends already accepted complete before close resolves', async () => {
    const log = await open();
    const pending = [log.append([rec('a')]), log.append([rec('b')])];
    await log.close();
    expect((await Promise.all(pending)).map((r) => r.baseOffset)).toEqual([0, 1]);
  });
});

describe('log options', () => {
  it('rejects impossible options with INVALID_ARGUMENT and fills defaults', () => {
    for (const bad of [
      { fsync: 'sometimes' },
      { segmentBytes: 0 },
      { segmentBytes: 2 ** 31 },
      { indexIntervalBytes: -1 },
      { retentionMs: 0 },
      { fsyncIntervalMs: 1.5 },
    ])
      expect(() => resolveLogOptions(bad as never)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(resolveLogOptions({})).toMatchObject({
      fsync: 'always',
      segmentBytes: 128 * 1024 * 1024,
      indexIntervalBytes: 4096,
    });
  });
});
