// Per-second event rates over a short sliding window, for stats (publishRate, ackRate, ...).
// Fixed buckets, so the cost per event is one addition.

const BUCKET_MS = 1000;
const BUCKETS = 10;

export class RateWindow {
  private counts = new Float64Array(BUCKETS);
  private bucketStartMs: number;

  constructor(nowMs: number) {
    this.bucketStartMs = Math.floor(nowMs / BUCKET_MS) * BUCKET_MS;
  }

  private roll(nowMs: number): void {
    const start = Math.floor(nowMs / BUCKET_MS) * BUCKET_MS;
    const steps = Math.min(BUCKETS, Math.max(0, (start - this.bucketStartMs) / BUCKET_MS));
    for (let i = 1; i <= steps; i++) this.counts[(this.bucketStartMs / BUCKET_MS + i) % BUCKETS] = 0;
    if (start > this.bucketStartMs) this.bucketStartMs = start;
  }

  add(n: number, nowMs: number): void {
    this.roll(nowMs);
    this.counts[(this.bucketStartMs / BUCKET_MS) % BUCKETS] += n;
  }

  /** Events per second over the window (the current, partial bucket included). */
  perSecond(nowMs: number): number {
    this.roll(nowMs);
    let total = 0;
    for (const c of this.counts) total += c;
    const spanMs = (BUCKETS - 1) * BUCKET_MS + Math.max(1, nowMs - this.bucketStartMs);
    return (total * 1000) / spanMs;
  }
}
