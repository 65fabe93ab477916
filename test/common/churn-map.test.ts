// ChurnMap and ChurnSet: Map and Set behaviour, and what they are for: add/delete churn on a
// long-lived collection leaves no garbage in the old generation (its table is replaced once empty).
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ChurnMap, ChurnSet } from '../../src/common/index.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const oldSpaceBytes = (): number =>
  v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;

/** Old-generation bytes added by `ops` runs of op on a collection that has been through two full GCs (so it is old itself). */
function oldGrowthBytes<C>(collection: C, op: (c: C, i: number) => void, ops: number): number {
  gc();
  gc();
  const before = oldSpaceBytes();
  for (let i = 0; i < ops; i++) op(collection, i);
  return oldSpaceBytes() - before;
}

describe('ChurnMap', () => {
  it('behaves as a Map across emptying', () => {
    const m = new ChurnMap<number, string>();
    expect(m.set(1, 'a').set(2, 'b').size).toBe(2);
    expect(m.get(1)).toBe('a');
    expect(m.has(2)).toBe(true);
    expect(m.delete(3)).toBe(false);
    expect(m.delete(1)).toBe(true);
    expect(m.delete(2)).toBe(true);
    expect(m.size).toBe(0);
    expect(m.get(1)).toBeUndefined();
    m.set(3, 'c').set(4, 'd');
    expect([...m]).toEqual([
      [3, 'c'],
      [4, 'd'],
    ]);
    expect([...m.keys()]).toEqual([3, 4]);
    expect([...m.values()]).toEqual(['c', 'd']);
    expect([...m.entries()]).toEqual([...m]);
    const seen: Array<[number, string]> = [];
    m.forEach((v, k) => seen.push([k, v]));
    expect(seen).toEqual([...m]);
    m.clear();
    expect(m.size).toBe(0);
  });

  it('an iteration may delete what it visits', () => {
    const m = new ChurnMap<number, number>();
    for (let i = 0; i < 5; i++) m.set(i, i);
    const visited: number[] = [];
    for (const [k] of m) {
      visited.push(k);
      m.delete(k);
    }
    expect(visited).toEqual([0, 1, 2, 3, 4]);
    expect(m.size).toBe(0);
  });

  it('churn on a long-lived map leaves (almost) nothing in the old generation, where a plain Map leaves tens of bytes per operation', () => {
    const ops = 200_000;
    const churn = oldGrowthBytes(new ChurnMap<number, number>(), (m, i) => void m.set(i, i).delete(i), ops);
    expect(churn).toBeLessThan(ops * 5);
  });
});

describe('ChurnSet', () => {
  it('behaves as a Set across emptying', () => {
    const s = new ChurnSet<string>();
    s.add('a').add('b').add('a');
    expect(s.size).toBe(2);
    expect(s.has('a')).toBe(true);
    expect(s.delete('x')).toBe(false);
    expect(s.delete('a') && s.delete('b')).toBe(true);
    expect(s.size).toBe(0);
    s.add('c');
    expect([...s]).toEqual(['c']);
    expect([...s.values()]).toEqual(['c']);
    const seen: string[] = [];
    s.forEach((v) => seen.push(v));
    expect(seen).toEqual(['c']);
    s.clear();
    expect(s.has('c')).toBe(false);
  });

  it('churn on a long-lived set leaves (almost) nothing in the old generation', () => {
    const ops = 200_000;
    const churn = oldGrowthBytes(new ChurnSet<number>(), (s, i) => void s.add(i).delete(i), ops);
    expect(churn).toBeLessThan(ops * 5);
  });
});
