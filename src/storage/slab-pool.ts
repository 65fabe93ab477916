// Reusable memory for encoded batches on their way to disk. A fresh large Buffer costs page
// faults (measured on a 2-core VM: ~0.6-0.9 ms per 100 KiB, against ~5 us to fill a reused one),
// which would dominate the append path. So appends carve batches out of 1 MiB slabs, and a slab
// returns to the free list once every batch carved from it has been written. A batch too large to
// share a slab (a publish of hundreds of messages) gets a buffer of its own, from a small free list
// of them: allocated afresh, those were a fifth of what a busy server allocated outside the
// JavaScript heap, which is what sets the pace of its garbage collections.
import { assert } from '../common/index.js';

export interface Slab {
  readonly buf: Buffer;
  /** Batches carved from this slab and not yet released. */
  refs: number;
  /** A buffer for one large batch (its own free list), not a slab shared by small ones. */
  readonly large?: boolean;
}

/** Large buffers are sized in powers of two from this up, so one serves batches of similar sizes. */
const MIN_LARGE_BYTES = 256 * 1024;

export interface SlabLease {
  buf: Buffer;
  /** null when the buffer was allocated on its own (too large for a slab). */
  slab: Slab | null;
}

export class SlabPool {
  private current: Slab | null = null;
  private usedBytes = 0;
  private readonly free: Slab[] = [];
  private readonly freeLarge: Slab[] = [];

  constructor(
    readonly slabBytes = 1024 * 1024,
    /** Free slabs kept for reuse; beyond that they go to the garbage collector. */
    readonly maxFreeSlabs = 8,
    /** Free large buffers kept for reuse (each at most maxLargeBytes). */
    readonly maxFreeLarge = 4,
    /** Largest buffer kept for reuse; a larger batch gets one that goes to the collector after its write. */
    readonly maxLargeBytes = 16 * 1024 * 1024,
  ) {}

  /** A buffer of exactly sizeBytes; release(lease.slab) once it is no longer referenced. */
  take(sizeBytes: number): SlabLease {
    if (sizeBytes > this.slabBytes / 4) return this.takeLarge(sizeBytes);
    if (this.current === null || this.usedBytes + sizeBytes > this.slabBytes) {
      const old = this.current;
      this.current = this.free.pop() ?? { buf: Buffer.allocUnsafeSlow(this.slabBytes), refs: 0 };
      this.usedBytes = 0;
      if (old !== null && old.refs === 0) this.recycle(old);
    }
    const slab = this.current;
    const buf = slab.buf.subarray(this.usedBytes, this.usedBytes + sizeBytes);
    this.usedBytes += (sizeBytes + 7) & ~7; // 8-byte aligned starts
    slab.refs++;
    return { buf, slab };
  }

  release(slab: Slab | null): void {
    if (slab === null) return;
    assert(slab.refs > 0, 'a slab is released once per batch carved from it');
    slab.refs--;
    if (slab.refs === 0 && slab !== this.current) this.recycle(slab);
  }

  /** A large batch's own buffer: the smallest free one that fits, else a new one of the next power of two. */
  private takeLarge(sizeBytes: number): SlabLease {
    if (sizeBytes > this.maxLargeBytes) return { buf: Buffer.allocUnsafe(sizeBytes), slab: null };
    let best = -1;
    for (let i = 0; i < this.freeLarge.length; i++) {
      const length = this.freeLarge[i].buf.length;
      if (length >= sizeBytes && (best < 0 || length < this.freeLarge[best].buf.length)) best = i;
    }
    let slab: Slab;
    if (best >= 0) {
      slab = this.freeLarge[best];
      this.freeLarge.splice(best, 1);
    } else {
      let bytes = MIN_LARGE_BYTES;
      while (bytes < sizeBytes) bytes *= 2;
      slab = { buf: Buffer.allocUnsafeSlow(Math.min(bytes, this.maxLargeBytes)), refs: 0, large: true };
    }
    slab.refs = 1;
    return { buf: slab.buf.subarray(0, sizeBytes), slab };
  }

  private recycle(slab: Slab): void {
    if (slab.large === true) {
      if (this.freeLarge.length < this.maxFreeLarge) this.freeLarge.push(slab);
      else {
        // Keep the larger buffers: a smaller one is dropped in favour of this one.
        let smallest = 0;
        for (let i = 1; i < this.freeLarge.length; i++)
          if (this.freeLarge[i].buf.length < this.freeLarge[smallest].buf.length) smallest = i;
        if (this.freeLarge[smallest].buf.length < slab.buf.length) this.freeLarge[smallest] = slab;
      }
      return;
    }
    if (this.free.length < this.maxFreeSlabs) this.free.push(slab);
  }
}

/** One pool for every disk log and journal of the process (one event loop writes them all). */
export const appendSlabPool = new SlabPool();
