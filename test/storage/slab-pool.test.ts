// Appends carve small batches out of shared slabs and give large ones a buffer of their own from a
// bounded free list: memory is reused once released, never while a batch still uses it.
import { describe, expect, it } from 'vitest';
import { SlabPool } from '../../src/storage/slab-pool.js';

describe('SlabPool', () => {
  it('carves small batches from one slab and reuses it once every batch is released', () => {
    const pool = new SlabPool(1024, 2);
    const a = pool.take(100);
    const b = pool.take(100);
    expect(a.slab).not.toBeNull();
    expect(a.slab).toBe(b.slab);
    const first = a.slab!;
    pool.take(900); // does not fit: a new current slab; the first still has two batches out
    pool.release(a.slab);
    pool.release(b.slab);
    pool.take(900); // the second slab is full: the next comes from the free list
    const reused = pool.take(10);
    expect(reused.slab).toBe(first);
  });

  it('gives a large batch its own buffer and reuses it after release', () => {
    const pool = new SlabPool(1024 * 1024, 8, 2, 4 * 1024 * 1024);
    const a = pool.take(300 * 1024);
    expect(a.buf.length).toBe(300 * 1024);
    expect(a.slab!.buf.length).toBe(512 * 1024);
    const b = pool.take(300 * 1024);
    expect(b.slab!.buf === a.slab!.buf).toBe(false); // a is still out
    pool.release(a.slab);
    const c = pool.take(400 * 1024);
    expect(c.slab!.buf === a.slab!.buf).toBe(true);
    expect(c.buf.length).toBe(400 * 1024);
  });

  it('takes the smallest free large buffer that fits', () => {
    const pool = new SlabPool(1024 * 1024, 8, 4, 8 * 1024 * 1024);
    const big = pool.take(3 * 1024 * 1024);
    const small = pool.take(300 * 1024);
    pool.release(big.slab);
    pool.release(small.slab);
    expect(pool.take(260 * 1024).slab!.buf === small.slab!.buf).toBe(true);
    expect(pool.take(260 * 1024).slab!.buf === big.slab!.buf).toBe(true);
  });

  it('keeps at most maxFreeLarge buffers, preferring the larger, and pools nothing past maxLargeBytes', () => {
    const pool = new SlabPool(1024 * 1024, 8, 1, 2 * 1024 * 1024);
    const a = pool.take(300 * 1024);
    const b = pool.take(1024 * 1024 + 1);
    pool.release(a.slab);
    pool.release(b.slab); // the larger one replaces a
    expect(pool.take(300 * 1024).slab!.buf === b.slab!.buf).toBe(true);
    const c = pool.take(300 * 1024);
    expect(c.slab!.buf === a.slab!.buf).toBe(false);
    const huge = pool.take(3 * 1024 * 1024);
    expect(huge.slab).toBeNull();
  });
});
