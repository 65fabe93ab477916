// RecentAppends (src/broker/queues/recent-appends.ts) on its own: the bounds on what a queue keeps
// of its newest appends, per queue and shared by the broker's queues, and what a take finds.
import { describe, expect, it } from 'vitest';
import { ByteBudget, RECENT_APPENDS_IDLE_MS, RecentAppends } from '../../src/broker/queues/recent-appends.js';
import { ManualClock } from '../../src/common/index.js';
import type { RecordInput } from '../../src/storage/index.js';

/** n records of `bytes` payload bytes each. */
const records = (n: number, bytes = 10): RecordInput[] =>
  Array.from({ length: n }, (_, i) => ({
    key: null,
    value: new Uint8Array(bytes).fill(i),
    headers: [],
    timestampMs: 0,
  }));

/** Copies and keeps records appended at baseOffset (as a durable append would). */
function append(r: RecentAppends, level: number, baseOffset: number, n: number, bytes = 10): boolean {
  const chunk = r.copy(records(n, bytes), 0, baseOffset);
  if (chunk === null) return false;
  r.keep(level, chunk);
  return true;
}

const offsets = (recs: Array<{ offset: number }> | null): number[] | null => recs?.map((x) => x.offset) ?? null;

describe('recent appends', () => {
  it('keeps at most its own bound, dropping the oldest appends first', () => {
    const budget = new ByteBudget(1_000);
    const clock = new ManualClock();
    const r = new RecentAppends(clock, budget, 50);
    r.noteTake(clock.now());
    expect(append(r, 0, 0, 3)).toBe(true); // 30 bytes
    expect(append(r, 0, 3, 3)).toBe(true); // 60: the first goes
    expect(r.bytes).toBe(30);
    expect(budget.usedBytes).toBe(30);
    expect(r.take(0, 0)).toBeNull(); // let go: the caller reads the log
    expect(offsets(r.take(0, 4))).toEqual([4, 5]);
  });

  it('an append larger than its bound, or than what the shared budget has left, is not kept', () => {
    const budget = new ByteBudget(45);
    const a = new RecentAppends(new ManualClock(), budget, 100);
    const b = new RecentAppends(new ManualClock(), budget, 30);
    expect(append(b, 0, 0, 4)).toBe(false); // 40 > b's own 30
    expect(append(a, 0, 0, 4)).toBe(true);
    expect(append(b, 0, 0, 1)).toBe(false); // 40 + 10 > the shared 45
    expect(budget.usedBytes).toBe(40);
    a.clear();
    expect(budget.usedBytes).toBe(0);
    expect(append(b, 0, 0, 1)).toBe(true);
  });

  it('a take finds the chunk holding its offset and lets go of those wholly before it', () => {
    const budget = new ByteBudget(1_000);
    const r = new RecentAppends(new ManualClock(), budget);
    append(r, 0, 10, 3);
    append(r, 0, 13, 2);
    append(r, 1, 0, 1);
    expect(r.take(0, 9)).toBeNull(); // before what is kept
    expect(offsets(r.take(0, 11))).toEqual([11, 12]); // to the end of its chunk
    expect(offsets(r.take(0, 13))).toEqual([13, 14]);
    expect(budget.usedBytes).toBe(30); // the first chunk went; level 1 is its own
    expect(r.take(0, 15)).toBeNull();
    expect(offsets(r.take(1, 0))).toEqual([0]);
  });

  it('an append that does not follow the last one starts over (a gap is never served)', () => {
    const budget = new ByteBudget(1_000);
    const r = new RecentAppends(new ManualClock(), budget);
    append(r, 0, 0, 2);
    append(r, 0, 5, 2); // offsets 2..4 went elsewhere (a failed append, a restart)
    expect(r.take(0, 0)).toBeNull();
    expect(offsets(r.take(0, 5))).toEqual([5, 6]);
    expect(budget.usedBytes).toBe(20);
  });

  it('copies records from a given index, at their offsets, with their own bytes', () => {
    const r = new RecentAppends(new ManualClock(), new ByteBudget(1_000));
    const input = records(3, 4);
    const chunk = r.copy(input, 1, 100)!;
    r.keep(0, chunk);
    input[1].value!.fill(7);
    const got = r.take(0, 101)!;
    expect(got.map((x) => [x.offset, [...x.value!]])).toEqual([
      [101, [1, 1, 1, 1]],
      [102, [2, 2, 2, 2]],
    ]);
  });

  it('wanted only while taken from lately; the sweep lets go once nobody takes', () => {
    const clock = new ManualClock();
    const budget = new ByteBudget(1_000);
    const r = new RecentAppends(clock, budget);
    expect(r.wanted()).toBe(false);
    r.noteTake(clock.now());
    expect(r.wanted()).toBe(true);
    append(r, 0, 0, 2);
    clock.advance(RECENT_APPENDS_IDLE_MS / 2);
    r.noteTake(clock.now());
    clock.advance(RECENT_APPENDS_IDLE_MS); // the first sweep sees a recent take: keeps
    expect(budget.usedBytes).toBe(20);
    clock.advance(RECENT_APPENDS_IDLE_MS);
    expect(budget.usedBytes).toBe(0);
    expect(r.wanted()).toBe(false);
  });

  it('copies of appends still on their way count toward the bound: no room, no copy', () => {
    const budget = new ByteBudget(1_000);
    const r = new RecentAppends(new ManualClock(), budget, 50);
    const first = r.copy(records(3), 0, 0)!; // 30 bytes on their way
    expect(r.copy(records(3), 0, 3)).toBeNull(); // 60 > 50, and nothing kept to drop
    expect([r.bytes, budget.usedBytes]).toEqual([30, 30]);
    r.keep(0, first);
    const third = r.copy(records(3), 0, 3)!; // the kept one is dropped for it
    expect([r.bytes, budget.usedBytes]).toEqual([30, 30]);
    r.drop(third); // its append failed
    expect([r.bytes, budget.usedBytes]).toEqual([0, 0]);
  });

  it('over its bound a queue drops its oldest appends first, whatever their level', () => {
    const budget = new ByteBudget(1_000);
    const r = new RecentAppends(new ManualClock(), budget, 50);
    append(r, 0, 0, 4); // level 0, older: 40 bytes
    append(r, 1, 0, 2); // level 1, newer: 20 bytes -> level 0's goes
    expect(r.bytes).toBe(20);
    expect(r.take(0, 0)).toBeNull();
    expect(offsets(r.take(1, 0))).toEqual([0, 1]);
  });

  it('holds its copies in buffers of their own, as large as what the budget counts', () => {
    const budget = new ByteBudget(1_000_000);
    const small = new RecentAppends(new ManualClock(), budget);
    const large = new RecentAppends(new ManualClock(), budget);
    for (let i = 0; i < 50; i++) {
      append(small, 0, i, 1, 16);
      append(large, 0, i * 8, 8, 8000);
    }
    large.clear(); // its reader passed them all: nothing of small's is held by large's buffers
    const counted = budget.usedBytes;
    const buffers = new Set<ArrayBufferLike>();
    for (let i = 0; i < 50; i++) for (const rec of small.take(0, i)!) buffers.add(rec.value!.buffer);
    const held = [...buffers].reduce((n, b) => n + b.byteLength, 0);
    expect([held, counted]).toEqual([50 * 16, 50 * 16]);
  });

  it('puts an append of more than one run into several buffers, each exactly full', () => {
    const r = new RecentAppends(new ManualClock(), new ByteBudget(10_000_000));
    append(r, 0, 0, 20, 10_000); // 200,000 bytes: runs of at most 64 KiB
    const got = r.take(0, 0)!;
    const sizes = new Map<ArrayBufferLike, number>();
    for (const rec of got) sizes.set(rec.value!.buffer, (sizes.get(rec.value!.buffer) ?? 0) + rec.value!.length);
    expect(sizes.size).toBeGreaterThan(1);
    for (const [buffer, used] of sizes)
      expect([buffer.byteLength <= 64 * 1024, buffer.byteLength]).toEqual([true, used]);
    expect(got.map((x) => x.value![0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
