// A token bucket that callers wait on: ratePerSecond tokens accrue up to burst; take() resolves in FIFO order.
import { WharfError, type Clock, type TimerHandle } from '../../common/index.js';

export class TokenBucket {
  private tokens: number;
  private lastRefillMs: number;
  private readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private timer: TimerHandle | null = null;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) {
      throw new WharfError('INVALID_ARGUMENT', `token bucket needs ratePerSecond > 0 and burst >= 1, got ${ratePerSecond} and ${burst}`);
    }
    this.tokens = burst;
    this.lastRefillMs = clock.now();
  }

  /** Resolves when a token is granted. */
  take(): Promise<void> {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** Fails every waiter (the endpoint is being stopped). */
  close(reason: unknown): void {
    this.timer?.cancel();
    this.timer = null;
    for (const w of this.waiters.splice(0)) w.reject(reason);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefillMs) * this.ratePerSecond) / 1000);
    this.lastRefillMs = now;
  }

  private schedule(): void {
    if (this.timer !== null || this.waiters.length === 0) return;
    const waitMs = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond));
    this.timer = this.clock.setTimer(waitMs, () => {
      this.timer = null;
      this.refill();
      while (this.waiters.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()!.resolve();
      }
      this.schedule();
    });
  }
}
