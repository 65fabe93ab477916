// A token bucket that callers wait on, one token per POST: the rate arithmetic is the queues'
// RateBucket; this adds FIFO waiters woken by one Clock timer.
import { WharfError, type Clock, type TimerHandle } from '../../common/index.js';
import { RateBucket } from '../queues/token-bucket.js';

export class TokenBucket {
  private readonly bucket: RateBucket;
  private readonly waiters: Array<(granted: boolean) => void> = [];
  private timer: TimerHandle | null = null;
  private closed = false;

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

  /**
   * Resolves with true when a token is granted, with false when the bucket is closed first: a wait
   * cut short is not a failure of the caller's work, which never started.
   */
  take(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.takeNow()) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  /** A token at once, if one is free and nobody waits ahead (who would be served first); else false. */
  takeNow(): boolean {
    return !this.closed && this.waiters.length === 0 && this.tryTake();
  }

  /** Ends every wait without a token, and every later take() (the endpoint is being stopped). */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
    for (const resolve of this.waiters.splice(0)) resolve(false);
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
      while (this.waiters.length > 0 && this.tryTake()) this.waiters.shift()!(true);
      this.schedule();
    });
  }
}
