// Property: any sequence of appends, reads, reopens, retention and truncation leaves the disk log
// and the memory log in agreement with each other and with a plain array of records.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  openDiskStorage,
  openMemoryStorage,
  type LogOptions,
  type LogRecord,
  type PartitionLog,
  type Storage,
} from '../../src/storage/index.js';
import { removeDir, tempDir } from './helpers.js';

interface ModelRecord {
  offset: number;
  value: string;
  timestampMs: number;
}

type Op =
  | { kind: 'append'; values: string[]; timestampsMs: number[] }
  | { kind: 'read'; fromDelta: number; maxBytes: number; maxRecords: number | undefined }
  | { kind: 'readBatches'; fromDelta: number; maxBytes: number }
  | { kind: 'offsetForTimestamp'; timestampMs: number }
  | { kind: 'retention'; nowMs: number }
  | { kind: 'truncateBefore'; offsetDelta: number }
  | { kind: 'reopen' };

// Mostly budgets of a few batches, where the at-least-one-batch and stop-before-overflow rules bite.
const maxBytesArb = fc.oneof(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 2000 }));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.integer({ min: 1, max: 6 }).chain((n) =>
      fc.record({
        kind: fc.constant('append' as const),
        values: fc.array(fc.string({ maxLength: 40 }), { minLength: n, maxLength: n }),
        timestampsMs: fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: n, maxLength: n }),
      }),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      fromDelta: fc.integer({ min: -3, max: 40 }),
      maxBytes: maxBytesArb,
      maxRecords: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('readBatches' as const),
      fromDelta: fc.integer({ min: -3, max: 40 }),
      maxBytes: maxBytesArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('offsetForTimestamp' as const),
      timestampMs: fc.integer({ min: 0, max: 10_500 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('retention' as const), nowMs: fc.integer({ min: 0, max: 20_000 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('truncateBefore' as const),
      offsetDelta: fc.integer({ min: -5, max: 30 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

const optionsArb = fc.record({
  segmentBytes: fc.integer({ min: 150, max: 900 }),
  indexIntervalBytes: fc.integer({ min: 1, max: 300 }),
  segmentMs: fc.integer({ min: 500, max: 100_000 }),
  retentionMs: fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: undefined }),
  retentionBytes: fc.option(fc.integer({ min: 1, max: 3000 }), { nil: undefined }),
});

const view = (r: LogRecord): [number, string, number] => [r.offset, Buffer.from(r.value!).toString(), r.timestampMs];

describe('partition log against a model', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  it('disk and memory logs agree with the model under random operations', async () => {
    await fc.assert(
      fc.asyncProperty(optionsArb, fc.array(opArb, { minLength: 5, maxLength: 60, size: 'max' }), async (opts, ops) => {
        const dir = tempDir('wharf-model-');
        dirs.push(dir);
        const options: LogOptions = { fsync: 'always', fsyncIntervalMs: 1000, ...opts };
        const disk: Storage = await openDiskStorage(dir);
        const mem: Storage = openMemoryStorage();
        let d: PartitionLog = await disk.openLog(['t', '0'], options);
        let m: PartitionLog = await mem.openLog(['t', '0'], options);
        const model: ModelRecord[] = [];
        let start = 0;
        const end = (): number => model.length;
        const live = (): ModelRecord[] => model.slice(start);
        try {
          for (const op of ops) {
            switch (op.kind) {
              case 'append': {
                const records = op.values.map((v, i) => ({
                  key: null,
                  value: Buffer.from(v),
                  headers: [],
                  timestampMs: op.timestampsMs[i],
                }));
                const [rd, rm] = await Promise.all([d.append(records), m.append(records)]);
                expect(rd).toEqual({ baseOffset: end(), lastOffset: end() + records.length - 1 });
                expect(rm).toEqual(rd);
                op.values.forEach((value, i) =>
                  model.push({ offset: model.length, value, timestampMs: op.timestampsMs[i] }),
                );
                break;
              }
              case 'read': {
                const from = Math.max(0, start + op.fromDelta);
                const ro = { maxBytes: op.maxBytes, maxRecords: op.maxRecords };
                const [rd, rm] = await Promise.all([d.read(from, ro), m.read(from, ro)]);
                expect(rd.map(view)).toEqual(rm.map(view));
                const first = Math.max(from, start);
                const expected = model.slice(first, first + rd.length).map((r) => [r.offset, r.value, r.timestampMs]);
                expect(rd.map(view)).toEqual(expected);
                if (first < end()) expect(rd.length).toBeGreaterThan(0); // at least one batch
                if (op.maxRecords !== undefined) expect(rd.length).toBeLessThanOrEqual(op.maxRecords);
                break;
              }
              case 'readBatches': {
                const from = Math.max(0, start + op.fromDelta);
                const [bd, bm] = await Promise.all([d.readBatches(from, op), m.readBatches(from, op)]);
                expect(bd.map((b) => Buffer.from(b).toString('hex'))).toEqual(
                  bm.map((b) => Buffer.from(b).toString('hex')),
                );
                if (Math.max(from, start) < end()) expect(bd.length).toBeGreaterThan(0);
                break;
              }
              case 'offsetForTimestamp': {
                const expected = live().find((r) => r.timestampMs >= op.timestampMs)?.offset ?? end();
                expect(await d.offsetForTimestamp(op.timestampMs)).toBe(expected);
                expect(await m.offsetForTimestamp(op.timestampMs)).toBe(expected);
                break;
              }
              case 'retention':
              case 'truncateBefore': {
                const target = op.kind === 'truncateBefore' ? Math.max(0, start + op.offsetDelta) : 0;
                const [nd, nm] =
                  op.kind === 'retention'
                    ? await Promise.all([d.applyRetention(op.nowMs), m.applyRetention(op.nowMs)])
                    : await Promise.all([d.truncateBefore(target), m.truncateBefore(target)]);
                expect(nd).toBe(nm);
                expect(d.startOffset).toBe(m.startOffset);
                expect(d.startOffset).toBeGreaterThanOrEqual(start);
                expect(d.startOffset).toBeLessThanOrEqual(end());
                if (op.kind === 'truncateBefore')
                  expect(d.startOffset).toBeLessThanOrEqual(Math.max(start, Math.min(target, end())));
                if (op.kind === 'retention' && opts.retentionMs !== undefined && opts.retentionBytes === undefined) {
                  // Only records of segments whose newest record is past retention may go.
                  const dropped = model.slice(start, d.startOffset);
                  if (dropped.length > 0)
                    expect(op.nowMs - Math.min(...dropped.map((r) => r.timestampMs))).toBeGreaterThan(opts.retentionMs);
                }
                start = d.startOffset;
                break;
              }
              case 'reopen': {
                await d.close();
                await m.close();
                d = await disk.openLog(['t', '0'], options);
                m = await mem.openLog(['t', '0'], options);
                break;
              }
            }
            expect(d.startOffset).toBe(start);
            expect(m.startOffset).toBe(start);
            expect(d.endOffset).toBe(end());
            expect(m.endOffset).toBe(end());
            expect(d.sizeBytes).toBe(m.sizeBytes);
          }
          // Everything still stored reads back in one pass, across segment boundaries.
          const all = await d.read(start, { maxBytes: 1 << 20 });
          expect(all.map(view)).toEqual(live().map((r) => [r.offset, r.value, r.timestampMs]));
        } finally {
          await disk.close();
          await mem.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
