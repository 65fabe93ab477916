// Producer rate limit: a token bucket per queue, counted in messages and in bytes.
// take() answers how long the caller must wait; the queue then delays or rejects (RATE_LIMITED).

export interface TokenBucketOptions {
  ratePerSecond: number;
  burst: number;
}

export class RateBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly options: TokenBucketOptions,
    nowMs: number,
  ) {
    this.tokens = options.burst;
    this.lastMs = nowMs;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(
        this.options.burst,
        this.tokens + ((nowMs - this.lastMs) * this.options.ratePerSecond) / 1000,
      );
      this.lastMs = nowMs;
    }
  }

  /** Ms until `cost` tokens are available (0 = now). Does not take them. */
  waitMs(cost: number, nowMs: number): number {
    this.refill(nowMs);
    // A cost above the burst could never be satisfied; it is charged as a full burst.
    const need = Math.min(cost, this.options.burst) - this.tokens;
    return need <= 0 ? 0 : Math.ceil((need * 1000) / this.options.ratePerSecond);
  }

  /** Takes `cost` tokens (may go negative, which makes later callers wait). */
  take(cost: number, nowMs: number): void {
    this.refill(nowMs);
    this.tokens -= Math.min(cost, this.options.burst);
  }
}
