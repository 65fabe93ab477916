// DelayIndex: the earliest-due delayed messages in bounded memory.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DelayIndex, type DelayEntry } from '../../src/broker/queues/delay-index.js';

const offsets = (entries: DelayEntry[]): number[] => entries.map((e) => e.offset);

/**
 * Pops everything due by `now` as the queue does, rescanning `pending` (offset -> due) when the index
 * asks; checks each popped entry was due and that nothing due stays behind. Returns the popped offsets.
 */
function drainDue(idx: DelayIndex, pending: Map<number, number>, now: number): number[] {
  const released: number[] = [];
  for (;;) {
    if (idx.needsRescan()) {
      idx.reset();
      for (const [o, d] of pending) idx.offer(d, o);
    }
    const got = offsets(idx.popDueEntries(now));
    if (got.length === 0) break;
    for (const o of got) {
      expect(pending.get(o)).toBeLessThanOrEqual(now);
      pending.delete(o);
      released.push(o);
    }
  }
  for (const d of pending.values()) expect(d).toBeGreaterThan(now);
  return released;
}

describe('DelayIndex', () => {
  it('keeps at most capacity entries and asks for a rescan when entries were left out', () => {
    const idx = new DelayIndex(2);
    idx.offer(300, 0);
    idx.offer(100, 1);
    idx.offer(200, 2); // evicts 300
    idx.offer(400, 3); // left out
    expect(idx.size).toBe(2);
    expect(offsets(idx.popDueEntries(150))).toEqual([1]);
    expect(idx.needsRescan()).toBe(false);
    expect(offsets(idx.popDueEntries(1000))).toEqual([2]);
    expect(idx.needsRescan()).toBe(true);
  });

  it('once entries were left out, an offer due after one of them is left out too, also when pops made room', () => {
    const idx = new DelayIndex(2);
    idx.offer(100, 0);
    idx.offer(300, 1);
    idx.offer(500, 2); // left out: the index is full and 500 is due after 300
    expect(offsets(idx.popDueEntries(100))).toEqual([0]);
    idx.offer(100_000, 3); // room again, but due after 500: left out as well
    expect(idx.size).toBe(1);
    expect(offsets(idx.popDueEntries(300))).toEqual([1]);
    expect(idx.needsRescan()).toBe(true); // the rescan finds 500 before 100000
  });

  it('invalidate() forgets every entry and leaves out every offer until a rescan refills it', () => {
    const idx = new DelayIndex(4);
    idx.offer(100, 0);
    idx.invalidate();
    expect(idx.needsRescan()).toBe(true);
    idx.offer(50, 1); // left out: the rescan finds it in the log
    expect(idx.size).toBe(0);
    expect(offsets(idx.popDueEntries(1000))).toEqual([]);
    idx.reset();
    idx.offer(100, 0);
    idx.offer(50, 1);
    expect(idx.needsRescan()).toBe(false);
    expect(offsets(idx.popDueEntries(1000))).toEqual([1, 0]);
  });

  it('with offers arriving between pops, releases every entry by its due time', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 3 })), { maxLength: 60 }),
        fc.integer({ min: 1, max: 6 }),
        (steps, cap) => {
          const idx = new DelayIndex(cap);
          const pending = new Map<number, number>();
          const drain = (now: number): void => void drainDue(idx, pending, now);
          let now = 0;
          steps.forEach(([delay, advance], offset) => {
            idx.offer(now + delay, offset);
            pending.set(offset, now + delay);
            now += advance;
            drain(now);
          });
          drain(now + 30);
          expect(pending.size).toBe(0);
        },
      ),
    );
  });

  it('with rescans, releases every entry in due order (ties in arrival order)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        (dues, cap) => {
          const idx = new DelayIndex(cap);
          const pending = new Map<number, number>();
          dues.forEach((d, offset) => {
            idx.offer(d, offset);
            pending.set(offset, d);
          });
          const released: number[] = [];
          for (let now = 0; now <= 50; now++) released.push(...drainDue(idx, pending, now));
          expect(released.length).toBe(dues.length);
        },
      ),
    );
  });
});
