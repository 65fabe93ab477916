// RangeSet: settled offsets as ranges; checked against a plain Set by fast-check.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RangeSet } from '../../src/broker/queues/range-set.js';

describe('RangeSet', () => {
  it('merges adjacent and overlapping ranges', () => {
    const s = new RangeSet();
    s.add(1);
    s.add(3);
    expect(s.rangeCount).toBe(2);
    s.add(2);
    expect(s.ranges()).toEqual([[1, 4]]);
    s.addRange(10, 20);
    s.addRange(4, 10);
    expect(s.ranges()).toEqual([[1, 20]]);
  });

  it('answers firstGapFrom, countIn and dropBelow', () => {
    const s = RangeSet.from([
      [0, 5],
      [7, 9],
    ]);
    expect(s.firstGapFrom(0)).toBe(5);
    expect(s.firstGapFrom(5)).toBe(5);
    expect(s.firstGapFrom(7)).toBe(9);
    expect(s.countIn(3, 8)).toBe(3);
    s.dropBelow(8);
    expect(s.ranges()).toEqual([[8, 9]]);
  });

  it('behaves like a Set of integers under random add/delete', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 5 })), {
          maxLength: 80,
        }),
        (ops) => {
          const s = new RangeSet();
          const model = new Set<number>();
          for (const [add, x, len] of ops) {
            if (add) {
              s.addRange(x, x + len);
              for (let i = x; i < x + len; i++) model.add(i);
            } else {
              s.delete(x);
              model.delete(x);
            }
          }
          for (let i = 0; i < 70; i++) expect(s.has(i)).toBe(model.has(i));
          let gap = 0;
          while (model.has(gap)) gap++;
          expect(s.firstGapFrom(0)).toBe(gap);
          expect(s.countIn(0, 70)).toBe(model.size);
          const r = s.ranges();
          for (let i = 1; i < r.length; i++) expect(r[i][0]).toBeGreaterThan(r[i - 1][1]); // disjoint, not adjacent
        },
      ),
    );
  });
});
