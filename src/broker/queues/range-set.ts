// A set of non-negative integers held as sorted, disjoint, half-open ranges [start, end).
// Queues keep settled (acked out of order) offsets here, so memory grows with the number of gaps,
// not with the number of messages.
import { assert } from '../../common/index.js';

export class RangeSet {
  // Flat array [s0, e0, s1, e1, ...], sorted, disjoint and non-adjacent (adjacent ranges merge).
  private r: number[] = [];

  /** Number of ranges held (the memory cost). */
  get rangeCount(): number {
    return this.r.length / 2;
  }

  /** Index of the first range whose end > x (binary search over range ends). */
  private firstEndAbove(x: number): number {
    let lo = 0;
    let hi = this.r.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.r[mid * 2 + 1] > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  has(x: number): boolean {
    const i = this.firstEndAbove(x);
    return i < this.r.length / 2 && this.r[i * 2] <= x;
  }

  add(x: number): void {
    this.addRange(x, x + 1);
  }

  /** Adds [start, end). */
  addRange(start: number, end: number): void {
    assert(start <= end, `range start ${start} > end ${end}`);
    if (start === end) return;
    // Ranges touching or overlapping [start, end] merge with it.
    const first = this.firstEndAbove(start - 1);
    let last = first;
    const n = this.r.length / 2;
    let s = start;
    let e = end;
    while (last < n && this.r[last * 2] <= end) {
      s = Math.min(s, this.r[last * 2]);
      e = Math.max(e, this.r[last * 2 + 1]);
      last++;
    }
    if (last - first === 1) {
      // Merges with one range (an ack in order extends the last one): in place, no array allocated.
      this.r[first * 2] = s;
      this.r[first * 2 + 1] = e;
      return;
    }
    this.r.splice(first * 2, (last - first) * 2, s, e);
  }

  /** Removes x if present. */
  delete(x: number): void {
    const i = this.firstEndAbove(x);
    if (i >= this.r.length / 2 || this.r[i * 2] > x) return;
    const s = this.r[i * 2];
    const e = this.r[i * 2 + 1];
    const parts: number[] = [];
    if (s < x) parts.push(s, x);
    if (x + 1 < e) parts.push(x + 1, e);
    this.r.splice(i * 2, 2, ...parts);
  }

  /** Smallest y >= x not in the set. */
  firstGapFrom(x: number): number {
    const i = this.firstEndAbove(x);
    if (i < this.r.length / 2 && this.r[i * 2] <= x) return this.r[i * 2 + 1];
    return x;
  }

  /** How many members lie in [start, end). */
  countIn(start: number, end: number): number {
    let total = 0;
    for (let i = this.firstEndAbove(start); i < this.r.length / 2; i++) {
      const s = this.r[i * 2];
      if (s >= end) break;
      total += Math.min(end, this.r[i * 2 + 1]) - Math.max(start, s);
    }
    return total;
  }

  /** Forgets every member below x (those offsets were truncated away). */
  dropBelow(x: number): void {
    const i = this.firstEndAbove(x);
    this.r.splice(0, i * 2);
    if (this.r.length > 0 && this.r[0] < x) this.r[0] = x;
  }

  /** Forgets every member at or above x (offsets past a log's end after a crash); true when any was held. */
  dropFrom(x: number): boolean {
    const i = this.firstEndAbove(x);
    if (i >= this.r.length / 2) return false;
    if (this.r[i * 2] < x) {
      this.r[i * 2 + 1] = x;
      this.r.length = i * 2 + 2;
    } else this.r.length = i * 2;
    return true;
  }

  /** Members in order as [start, end) pairs. */
  ranges(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.r.length; i += 2) out.push([this.r[i], this.r[i + 1]]);
    return out;
  }

  clear(): void {
    this.r = [];
  }

  static from(ranges: Array<[number, number]>): RangeSet {
    const set = new RangeSet();
    for (const [s, e] of ranges) set.addRange(s, e);
    return set;
  }
}
