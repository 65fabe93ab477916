// Backpressure: maxLength/maxBytes with every overflow policy, and producer rate limits.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isWharfError } from '../../src/common/index.js';
import { openTestBroker, settle, type TestBroker, qstats } from './queue-helpers.js';

describe('overflow policies', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
  });
  afterEach(() => t.cleanup());

  const fill = (name: string, n: number, extra: object = {}) =>
    t.broker.publish(
      name,
      Array.from({ length: n }, (_, i) => ({ payload: i, ...extra })),
    );

  it("'reject' (RabbitMQ reject-publish) fails the publish with QUEUE_FULL and a retry-after hint", async () => {
    await t.broker.createQueue('q', { maxLength: 3, overflow: 'reject' });
    await fill('q', 3);
    const err = await t.broker.publish('q', { payload: 'x' }).catch((e: unknown) => e);
    expect(isWharfError(err, 'QUEUE_FULL')).toBe(true);
    expect((err as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    const [m] = await t.broker.receive('q');
    await m.ack();
    await t.broker.publish('q', { payload: 'fits' });
    expect((await qstats(t, 'q')).depth).toBe(3);
  });

  it('a rejected publish with a dedupId is stored when retried (the failed attempt does not count as seen)', async () => {
    await t.broker.createQueue('q', { maxLength: 1, overflow: 'reject' });
    await t.broker.publish('q', { payload: 'first' });
    await expect(t.broker.publish('q', { payload: 'second', dedupId: 'd2' })).rejects.toMatchObject({
      code: 'QUEUE_FULL',
    });
    const [m] = await t.broker.receive('q');
    await m.ack();
    const retried = await t.broker.publish('q', { payload: 'second', dedupId: 'd2' });
    expect(retried.duplicate).toBeUndefined();
    expect((await t.broker.receive('q')).map((x) => x.payload)).toEqual(['second']);
  });

  it("'reject' also applies to maxBytes", async () => {
    await t.broker.createQueue('q', { maxBytes: 400, overflow: 'reject' });
    await t.broker.publish('q', { payload: 'x'.repeat(200) });
    await expect(t.broker.publish('q', { payload: 'y'.repeat(250) })).rejects.toMatchObject({ code: 'QUEUE_FULL' });
  });

  it("'block' waits for room, and fails with QUEUE_FULL after blockTimeoutMs", async () => {
    await t.broker.createQueue('q', { maxLength: 2, overflow: 'block', blockTimeoutMs: 1000 });
    await fill('q', 2);
    let resolved = false;
    const waiting = t.broker.publish('q', { payload: 'waits' }).then(() => (resolved = true));
    await settle();
    expect(resolved).toBe(false);
    const [m] = await t.broker.receive('q');
    await m.ack();
    await waiting;
    expect(resolved).toBe(true);
    const timedOut = t.broker.publish('q', { payload: 'too many' }).catch((e: unknown) => e);
    await settle();
    t.clock.advance(1000);
    expect(isWharfError(await timedOut, 'QUEUE_FULL')).toBe(true);
  });

  it("'drop-oldest' (RabbitMQ drop-head) drops the head to make room", async () => {
    await t.broker.createQueue('q', { maxLength: 3, overflow: 'drop-oldest' });
    await fill('q', 3);
    await t.broker.publish('q', [{ payload: 'new1' }, { payload: 'new2' }]);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([2, 'new1', 'new2']);
    expect((await qstats(t, 'q')).dropped).toBe(2);
  });

  it("'drop-oldest' drops a message that is ready again after a nack, rather than fail QUEUE_FULL or drop a newer one", async () => {
    await t.broker.createQueue('q', { maxLength: 1, overflow: 'drop-oldest' });
    await t.broker.publish('q', { payload: 'a' });
    await (await t.broker.receive('q'))[0].nack({ delayMs: 0 });
    expect((await qstats(t, 'q')).depth).toBe(1);
    await t.broker.publish('q', { payload: 'b' });
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['b']);

    await t.broker.createQueue('q2', { maxLength: 2, overflow: 'drop-oldest' });
    await t.broker.publish('q2', [{ payload: 1 }, { payload: 2 }]);
    await (await t.broker.receive('q2'))[0].nack({ delayMs: 0 }); // 1 ready again, older than 2
    await t.broker.publish('q2', { payload: 3 });
    expect((await t.broker.receive('q2', { max: 10 })).map((m) => m.payload)).toEqual([2, 3]);
    expect((await qstats(t, 'q2')).dropped).toBe(1);
  });

  it("'drop-lowest-priority' drops the lowest level first; an incoming message below every stored one is dropped itself", async () => {
    await t.broker.createQueue('q', { maxLength: 3, overflow: 'drop-lowest-priority', priorities: 3 });
    await t.broker.publish('q', [
      { payload: 'p2', priority: 2 },
      { payload: 'p0', priority: 0 },
      { payload: 'p1', priority: 1 },
    ]);
    await t.broker.publish('q', { payload: 'p2b', priority: 2 });
    await t.broker.publish('q', { payload: 'p0b', priority: 0 });
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['p2', 'p2b', 'p1']);
  });

  it("'dead-letter' (RabbitMQ reject-publish-dlx) sends the overflowing message to the dead-letter queue", async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { maxLength: 1, overflow: 'dead-letter', deadLetterQueue: 'q.dlq' });
    await t.broker.publish('q', { payload: 'kept' });
    const [r] = await t.broker.publish('q', [{ payload: 'overflow' }]);
    expect(typeof r.id).toBe('string');
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['kept']);
    const [dead] = await t.broker.receive('q.dlq');
    expect(dead.payload).toBe('overflow');
    expect(dead.headers['x-dead-letter-reason']).toBe('overflow');
  });
});

describe('producer rate limits', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
  });
  afterEach(() => t.cleanup());

  it("mode 'reject' fails with RATE_LIMITED past the burst", async () => {
    await t.broker.createQueue('q', { rateLimit: { messagesPerSecond: 10, burstMessages: 5, mode: 'reject' } });
    await t.broker.publish(
      'q',
      Array.from({ length: 5 }, () => ({ payload: 1 })),
    );
    const err = await t.broker.publish('q', { payload: 1 }).catch((e: unknown) => e);
    expect(isWharfError(err, 'RATE_LIMITED')).toBe(true);
    expect((err as { retryAfterMs: number }).retryAfterMs).toBe(100);
    t.clock.advance(100);
    await t.broker.publish('q', { payload: 1 });
  });

  it("mode 'delay' (default) slows the publisher to the rate", async () => {
    await t.broker.createQueue('q', { rateLimit: { bytesPerSecond: 1000, burstBytes: 1000 } });
    await t.broker.publish('q', { payload: 'x'.repeat(900) });
    let done = false;
    const p = t.broker.publish('q', { payload: 'y'.repeat(900) }).then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    t.clock.advance(1000);
    await p;
    expect(done).toBe(true);
  });
});
