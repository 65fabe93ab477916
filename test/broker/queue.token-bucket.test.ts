// RateBucket: producer rate limits.
import { describe, expect, it } from 'vitest';
import { RateBucket } from '../../src/broker/queues/token-bucket.js';

describe('RateBucket', () => {
  it('allows a burst, then makes callers wait in proportion to the rate', () => {
    const b = new RateBucket({ ratePerSecond: 10, burst: 5 }, 0);
    expect(b.waitMs(5, 0)).toBe(0);
    b.take(5, 0);
    expect(b.waitMs(1, 0)).toBe(100);
    expect(b.waitMs(1, 100)).toBe(0);
    b.take(1, 100);
    expect(b.waitMs(2, 100)).toBe(200);
  });

  it('refills no further than the burst', () => {
    const b = new RateBucket({ ratePerSecond: 1000, burst: 3 }, 0);
    b.take(3, 0);
    expect(b.waitMs(3, 60_000)).toBe(0);
    b.take(3, 60_000);
    expect(b.waitMs(1, 60_000)).toBe(1);
  });
});
