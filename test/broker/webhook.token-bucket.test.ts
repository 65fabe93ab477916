// Per-endpoint rate limit: a token bucket on the injectable clock grants `burst` at once, then ratePerSecond.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/index.js';
import { TokenBucket } from '../../src/broker/webhooks/token-bucket.js';

const flush = () => new Promise((r) => setImmediate(r));

describe('webhook rate limit (token bucket)', () => {
  it('grants the burst immediately, then one token per 1000/rate ms, in FIFO order', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 2, clock);
    const granted: number[] = [];
    for (let i = 0; i < 5; i++) void bucket.take().then(() => granted.push(i));
    await flush();
    expect(granted).toEqual([0, 1]);
    clock.advance(99);
    await flush();
    expect(granted).toEqual([0, 1]);
    clock.advance(1);
    await flush();
    expect(granted).toEqual([0, 1, 2]);
    clock.advance(200);
    await flush();
    expect(granted).toEqual([0, 1, 2, 3, 4]);
  });

  it('close() ends the waits without a token, and every later take()', async () => {
    const bucket = new TokenBucket(1, 1, new ManualClock());
    expect(await bucket.take()).toBe(true);
    const waiting = bucket.take();
    bucket.close();
    expect(await waiting).toBe(false);
    expect(await bucket.take()).toBe(false);
  });

  it('rejects a non-positive rate', () => {
    expect(() => new TokenBucket(0, 1, new ManualClock())).toThrow(/ratePerSecond/);
  });
});
