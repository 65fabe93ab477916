// Latencies of one run, kept whole in a preallocated Float64Array and sorted once at the end: one
// store per message on the consumer's hot path (a histogram's bucket arithmetic per message was 9 %
// of the bench consumer's CPU, which the server then shares two cores with). The peers' harness
// records the same way, so the two report percentiles alike (nearest rank).

/** Recorders hold at most this many values (8 MiB each): more than any scenario delivers. */
const MAX_VALUES = 1 << 20;

export class LatencyRecorder {
  private values: Float64Array;
  private count = 0;
  private sorted = true;

  constructor(expectedValues: number) {
    this.values = new Float64Array(Math.min(MAX_VALUES, Math.max(1, expectedValues)));
  }

  /** Records one latency; past MAX_VALUES the rest are not recorded (the count says so). */
  add(latencyMs: number): void {
    if (this.count === this.values.length) {
      if (this.count >= MAX_VALUES) return;
      const grown = new Float64Array(Math.min(MAX_VALUES, this.count * 2));
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count++] = latencyMs;
    this.sorted = false;
  }

  /** The nearest-rank quantile q (0 < q <= 1) in ms, rounded to µs; null with no values. */
  quantileMs(q: number): number | null {
    if (this.count === 0) return null;
    const values = this.values.subarray(0, this.count);
    if (!this.sorted) {
      values.sort();
      this.sorted = true;
    }
    const rank = Math.min(this.count - 1, Math.max(0, Math.ceil(q * this.count) - 1));
    return Math.round(values[rank] * 1000) / 1000;
  }
}
