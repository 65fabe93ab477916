// The per-producer results table: a run of consecutive sequences in a ring of byte slots, the rest
// in a map; whichever part holds a sequence, it resolves to what was first put for it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_RESULTS_PER_PRODUCER,
  MAX_RUN_GAP,
  ProducerResults,
  type StoredResult,
} from '../../src/broker/producer-results.js';

describe('producer results', () => {
  it('gives back every kind of result, from the ring and from the map', () => {
    const r = new ProducerResults();
    const results: StoredResult[] = [
      '0000abcd',
      { id: 'x1', partition: 3 },
      { id: 'x2', partition: 4, offset: 2 ** 40 + 7 },
      'é-not-ascii',
      'y'.repeat(40),
      'after',
    ];
    results.forEach((res, s) => r.put(s, res));
    results.forEach((res, s) => expect(r.get(s)).toEqual(res));
    expect(r.size).toBe(results.length);
    expect(r.maxStored).toBe(results.length - 1);
  });

  it('a sequence put again keeps its first result', () => {
    const r = new ProducerResults();
    r.put(0, 'first');
    r.put(5, 'gap');
    r.put(0, 'second');
    r.put(5, 'again');
    expect([r.get(0), r.get(5), r.size]).toEqual(['first', 'gap', 2]);
  });

  it('any mix of consecutive, repeated and out-of-order sequences resolves like a plain map', () => {
    // Mostly the next sequence, so runs grow past the ring's first sizes; now and then any sequence.
    const step = fc.oneof(
      { arbitrary: fc.constant('next' as const), weight: 30 },
      { arbitrary: fc.integer({ min: 0, max: 3000 }), weight: 1 },
    );
    fc.assert(
      fc.property(fc.array(step, { minLength: 50, maxLength: 600, size: 'max' }), fc.boolean(), (steps, positions) => {
        const r = new ProducerResults();
        const model = new Map<number, StoredResult>();
        let next = 0;
        for (const st of steps) {
          const seq = st === 'next' ? next : st;
          next = Math.max(next, seq + 1);
          const res: StoredResult = positions
            ? { id: `id-${seq}-${model.size}`, partition: seq % 7, offset: seq * 3 }
            : `id-${seq}-${model.size}`;
          r.put(seq, res);
          if (!model.has(seq)) model.set(seq, res);
        }
        const seen: Array<[boolean, StoredResult | undefined]> = [];
        const expected: Array<[boolean, StoredResult | undefined]> = [];
        for (let s = 0; s <= Math.max(next, 301); s++) {
          seen.push([r.has(s), r.get(s)]);
          expected.push([model.has(s), model.get(s)]);
        }
        expect(seen).toEqual(expected);
        expect(r.size).toBe(model.size);
      }),
      { numRuns: 200 },
    );
  });

  it('sequences in any order (a restart scanning partitions one after another) all resolve, also past the largest gap', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(
          Array.from({ length: 3000 }, (_, i) => i),
          { minLength: 1 },
        ),
        fc.nat(5000),
        (seqs, jump) => {
          const r = new ProducerResults();
          for (const q of seqs) r.put(q, `id-${q}`);
          const far = 3000 + MAX_RUN_GAP + 1 + jump; // past the largest gap the run steps over: the map
          r.put(far, 'far');
          for (const q of seqs) expect(r.get(q)).toBe(`id-${q}`);
          expect(r.get(far)).toBe('far');
          expect(r.size).toBe(seqs.length + 1);
          expect(r.has(-1) || r.has(3000 + MAX_RUN_GAP + 1 + jump + 1)).toBe(false);
        },
      ),
      { numRuns: 50 },
    );
  });

  it(`keeps the last ${MAX_RESULTS_PER_PRODUCER} of a long run, growing its ring on the way`, () => {
    const r = new ProducerResults();
    const total = 3 * MAX_RESULTS_PER_PRODUCER + 17;
    const base = 2 ** 40; // sequences far above 2^32 index their slots by the low bits
    for (let s = 0; s < total; s++) r.put(base + s, `m${s}`);
    expect(r.size).toBe(MAX_RESULTS_PER_PRODUCER);
    expect(r.get(base + total - MAX_RESULTS_PER_PRODUCER)).toBe(`m${total - MAX_RESULTS_PER_PRODUCER}`);
    expect(r.has(base + total - MAX_RESULTS_PER_PRODUCER - 1)).toBe(false);
    expect(r.get(base + total - 1)).toBe(`m${total - 1}`);
  });
});
