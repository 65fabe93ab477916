// Retry backoff: exponential, capped, with jitter.
import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../src/broker/queues/retry.js';

describe('retryDelayMs', () => {
  const policy = { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0.5 };
  it('doubles per delivery up to the cap when jitter draws 0', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(policy, n, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
  it('removes up to jitter * delay at random', () => {
    expect(retryDelayMs(policy, 3, () => 0.999)).toBe(200);
    for (let i = 0; i < 100; i++) {
      const d = retryDelayMs(policy, 3);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });
});
