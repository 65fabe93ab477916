// Events per second over a recent sliding window (publishRate, deliverRate, errorRate, ...).
// One-second buckets in a ring: mark() is O(1) and allocation-free; rate() sums the window.
import type { Clock } from '../common/index.js';

export const RATE_WINDOW_MS = 10_000;
const BUCKET_MS = 1_000;

export class RateMeter {
  private readonly counts: Float64Array;
  private readonly bucketCount: number;
  /** The absolute bucket number (ms / BUCKET_MS) of the newest bucket written. */
  private head = -1;
  private total = 0;

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number = RATE_WINDOW_MS,
  ) {
    this.bucketCount = Math.max(1, Math.ceil(windowMs / BUCKET_MS));
    this.counts = new Float64Array(this.bucketCount);
  }

  mark(n = 1): void {
    this.advance(Math.floor(this.clock.now() / BUCKET_MS));
    this.counts[this.head % this.bucketCount] += n;
    this.total += n;
  }

  /** Events per second over the window ending now. */
  rate(): number {
    const nowMs = this.clock.now();
    this.advance(Math.floor(nowMs / BUCKET_MS));
    let sum = 0;
    for (let i = 0; i < this.bucketCount; i++) sum += this.counts[i];
    return sum / (this.windowMs / 1000);
  }

  /** Every event ever marked. */
  get count(): number {
    return this.total;
  }

  private advance(bucket: number): void {
    if (bucket <= this.head) return;
    if (this.head < 0 || bucket - this.head >= this.bucketCount) {
      this.counts.fill(0);
    } else {
      for (let b = this.head + 1; b <= bucket; b++) this.counts[b % this.bucketCount] = 0;
    }
    this.head = bucket;
  }
}
