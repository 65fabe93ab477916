// A token bucket that callers wait on, one token per POST: the rate arithmetic is the queues'
// RateBucket; this adds FIFO waiters woken by one Clock timer.
import { WharfError, type Clock, type TimerHandle } from '../../common/index.js';
import { RateBucket } from '../queues/token-bucket.js';

export class TokenBucket {
  private readonly bucket: RateBucket;
  private readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private timer: TimerHandle | null = null;

  constructor(
    ratePerSecond: number,
    burst: number,
    private readonly clock: Clock,
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `token bucket needs ratePerSecond > 0 and burst >= 1, got ${ratePerSecond} and ${burst}`,
      );
    }
    this.bucket = new RateBucket({ ratePerSecond, burst }, clock.now());
  }

  /** Resolves when a token is granted. */
  take(): Promise<void> {
    if (this.waiters.length === 0 && this.tryTake()) return Promise.resolve();
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

  private tryTake(): boolean {
    const now = this.clock.now();
    if (this.bucket.waitMs(1, now) > 0) return false;
    this.bucket.take(1, now);
    return true;
  }

  private schedule(): void {
    if (this.timer !== null || this.waiters.length === 0) return;
    const waitMs = Math.max(1, this.bucket.waitMs(1, this.clock.now()));
    this.timer = this.clock.setTimer(waitMs, () => {
      this.timer = null;
      while (this.waiters.length > 0 && this.tryTake()) this.waiters.shift()!.resolve();
      this.schedule();
    });
  }
}
