// Backpressure: maxLength/maxBytes with every overflow policy, and producer rate limits.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { WharfError, isWharfError } from '../../src/common/index.js';
import { holdNext, openTestBroker, payloads, settle, type TestBroker, qstats, until } from './queue-helpers.js';

describe('overflow policies', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await t.cleanup();
  });

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

  it("'block' refuses at once a batch that is over the limits on its own, instead of waiting out blockTimeoutMs", async () => {
    await t.broker.createQueue('q', { maxLength: 2, overflow: 'block', blockTimeoutMs: 60_000 });
    const refused = t.broker.publish('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]).catch((e: unknown) => e);
    await settle();
    expect(isWharfError(await refused, 'QUEUE_FULL')).toBe(true); // the clock never moved
    expect((await qstats(t, 'q')).depth).toBe(0);
  });

  it("'drop-oldest' drops one message per message over the limit, also for concurrent publishes (a stored one is not counted again as reserved)", async () => {
    await t.broker.createQueue('q', { maxLength: 4, overflow: 'drop-oldest' });
    await t.broker.publish('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    // Two batches at once: the first fits, the second needs one victim.
    await Promise.all([t.broker.publish('q', [{ payload: 'a' }]), t.broker.publish('q', [{ payload: 'b' }])]);
    expect((await qstats(t, 'q')).depth).toBe(4);
    expect((await qstats(t, 'q')).dropped).toBe(1);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([2, 3, 'a', 'b']);
  });

  it("'drop-oldest' keeps maxLength when a publish comes while another's drops are being committed (the freed room is the dropper's)", async () => {
    await t.broker.createQueue('q', { maxLength: 3, overflow: 'drop-oldest' });
    await t.broker.publish('q', [{ payload: 0 }, { payload: 1 }, { payload: 2 }]);
    const a = t.broker.publish('q', [{ payload: 'a' }]); // over: drops 0, then commits the drop
    // Turn by turn until a's victim is gone from memory (a now waits for its journal commit).
    let b: Promise<unknown> | null = null;
    for (let i = 0; i < 1000 && b === null; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      if ((await qstats(t, 'q')).depth === 2) b = t.broker.publish('q', [{ payload: 'b' }]);
    }
    expect(b).not.toBeNull();
    await Promise.all([a, b]);
    const s = await qstats(t, 'q');
    expect([s.depth, s.dropped]).toEqual([3, 2]); // b dropped 1 as a dropped 0
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([2, 'a', 'b']);
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
    expect((await t.broker.publish('q', { payload: 'p2b', priority: 2 })).overflow).toBeUndefined();
    expect((await t.broker.publish('q', { payload: 'p0b', priority: 0 })).overflow).toBe('dropped');
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['p2', 'p2b', 'p1']);
  });

  it("'dead-letter' (RabbitMQ reject-publish-dlx) sends the overflowing message to the dead-letter queue", async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { maxLength: 1, overflow: 'dead-letter', deadLetterQueue: 'q.dlq' });
    await t.broker.publish('q', { payload: 'kept' });
    const [r] = await t.broker.publish('q', [{ payload: 'overflow' }]);
    expect(typeof r.id).toBe('string');
    expect(r.overflow).toBe('dead-lettered');
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['kept']);
    const [dead] = await t.broker.receive('q.dlq');
    expect(dead.payload).toBe('overflow');
    expect(dead.headers['x-dead-letter-reason']).toBe('overflow');
  });

  it("'dead-letter' decides message by message: a batch one over the limit stores what fits and dead-letters the rest", async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { maxLength: 5, overflow: 'dead-letter', deadLetterQueue: 'q.dlq' });
    const results = await fill('q', 6);
    expect(results.map((r) => r.overflow)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      'dead-lettered',
    ]);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([0, 1, 2, 3, 4]);
    expect((await t.broker.receive('q.dlq', { max: 10 })).map((m) => m.payload)).toEqual([5]);
    expect((await qstats(t, 'q')).deadLettered).toBe(1);

    // By bytes: a large message that does not fit goes, a small one after it that fits stays.
    await t.broker.createQueue('b', { maxBytes: 300, overflow: 'dead-letter', deadLetterQueue: 'q.dlq' });
    await t.broker.publish('b', [{ payload: 'a'.repeat(200) }, { payload: 'b'.repeat(200) }, { payload: 'c' }]);
    expect((await t.broker.receive('b', { max: 10 })).map((m) => m.payload)).toEqual(['a'.repeat(200), 'c']);
    expect((await t.broker.receive('q.dlq', { max: 10 })).map((m) => m.payload)).toEqual(['b'.repeat(200)]);
  });

  /** Makes every append to the queue named dlq fail with failure until the returned function is called. */
  const failAppendsTo = (dlq: string, failure: Error): (() => void) => {
    const real = QueueEngine.prototype.appendRecords;
    const spy = vi.spyOn(QueueEngine.prototype, 'appendRecords').mockImplementation(function (this: QueueEngine, r) {
      return this.name === dlq ? Promise.reject(failure) : real.call(this, r);
    });
    return () => spy.mockRestore();
  };

  it("'dead-letter': a publish whose dead letters cannot be written fails with QUEUE_FULL and stores nothing, so its retry stores it once", async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { maxLength: 2, overflow: 'dead-letter', deadLetterQueue: 'q.dlq' });
    const failure = new WharfError('UNAVAILABLE', 'dead-letter queue unavailable');
    const restore = failAppendsTo('q.dlq', failure);
    let err: unknown;
    try {
      err = await fill('q', 3).catch((e: unknown) => e);
    } finally {
      restore();
    }
    expect(await qstats(t, 'q')).toMatchObject({ depth: 0, deadLettered: 0, dlqDepth: 0, deadLetterErrors: 1 });
    expect(err).toMatchObject({ code: 'QUEUE_FULL', cause: failure });
    expect((err as Error).message).toMatch(/dead-letter queue "q\.dlq" could not take/);
    expect((await fill('q', 3)).map((r) => r.overflow)).toEqual([undefined, undefined, 'dead-lettered']);
    expect(payloads(await t.broker.receive('q', { max: 10 }))).toEqual([0, 1]);
    expect(payloads(await t.broker.receive('q.dlq', { max: 10 }))).toEqual([2]);
  });

  it("'dead-letter': single publishes gathered in one tick, whose dead letter cannot be written, fail only where nothing was stored", async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { maxLength: 2, overflow: 'dead-letter', deadLetterQueue: 'q.dlq' });
    const restore = failAppendsTo('q.dlq', new WharfError('UNAVAILABLE', 'dead-letter queue unavailable'));
    let outcomes: PromiseSettledResult<unknown>[];
    try {
      outcomes = await Promise.allSettled([0, 1, 2].map((i) => t.broker.publish('q', { payload: i })));
    } finally {
      restore();
    }
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(outcomes[2]).toMatchObject({ reason: { code: 'QUEUE_FULL' } });
    expect(payloads(await t.broker.receive('q', { max: 10 }))).toEqual([0, 1]);
    expect(await qstats(t, 'q')).toMatchObject({ deadLettered: 0, dlqDepth: 0 });
  });

  it("'dead-letter': a publish that finds room while another's dead letters are being written is stored after that one's messages", async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { maxLength: 3, overflow: 'dead-letter', deadLetterQueue: 'q.dlq' });
    await t.broker.publish('q', { payload: 'x' });
    const [x] = await t.broker.receive('q');
    const release = holdNext(QueueEngine.prototype, 'appendRecords');
    const first = t.broker.publish('q', [{ payload: 'a1' }, { payload: 'a2' }, { payload: 'a3' }]); // a3 is over
    const appends = vi.mocked(QueueEngine.prototype.appendRecords).mock.calls;
    await until(() => appends.length === 1, t); // a1 and a2 have their room, a3 is on its way to q.dlq
    await x.ack(); // room for one more while a3's dead letter is being written
    const second = t.broker.publish('q', [{ payload: 'b' }]);
    await settle(10);
    release();
    expect((await first).map((r) => r.overflow)).toEqual([undefined, undefined, 'dead-lettered']);
    expect((await second).map((r) => r.overflow)).toEqual([undefined]);
    expect(payloads(await t.broker.receive('q', { max: 10 }))).toEqual(['a1', 'a2', 'b']);
  });

  for (const overflow of ['drop-oldest', 'drop-lowest-priority'] as const) {
    it(`'${overflow}': a publish that cannot fit even with every ready message gone drops nothing`, async () => {
      // Larger than maxBytes on its own.
      await t.broker.createQueue('bytes', { maxBytes: 1000, overflow });
      await fill('bytes', 5);
      const big = await t.broker.publish('bytes', { payload: 'x'.repeat(2000) }).catch((e: unknown) => e);
      expect(isWharfError(big, 'QUEUE_FULL')).toBe(true);
      expect(await qstats(t, 'bytes')).toMatchObject({ depth: 5, dropped: 0 });

      // A batch larger than maxLength.
      await t.broker.createQueue('count', { maxLength: 3, overflow });
      await fill('count', 2);
      const batch = await fill('count', 4).catch((e: unknown) => e);
      expect(isWharfError(batch, 'QUEUE_FULL')).toBe(true);
      expect(await qstats(t, 'count')).toMatchObject({ depth: 2, dropped: 0 });

      // Room held by messages in flight: dropping the one ready message would not be enough.
      await t.broker.createQueue('leased', { maxLength: 3, overflow });
      await fill('leased', 3);
      await t.broker.receive('leased', { max: 2 });
      const leased = await fill('leased', 2).catch((e: unknown) => e);
      expect(isWharfError(leased, 'QUEUE_FULL')).toBe(true);
      expect(await qstats(t, 'leased')).toMatchObject({ depth: 1, inFlight: 2, dropped: 0 });
      // One more fits once the ready message goes.
      await fill('leased', 1);
      expect(await qstats(t, 'leased')).toMatchObject({ depth: 1, inFlight: 2, dropped: 1 });
    });
  }

  it("'drop-oldest' chooses as many victims as the batch needs, oldest first, across nacked and never-delivered messages", async () => {
    await t.broker.createQueue('q', { maxLength: 4, overflow: 'drop-oldest' });
    await fill('q', 4); // 0 1 2 3
    const [m0] = await t.broker.receive('q');
    await m0.nack({ delayMs: 0 }); // 0 ready again
    await t.broker.publish('q', [{ payload: 'n1' }, { payload: 'n2' }, { payload: 'n3' }]);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([3, 'n1', 'n2', 'n3']);
    expect((await qstats(t, 'q')).dropped).toBe(3);
  });
});

describe('dedup while the original is being stored', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
  });
  afterEach(() => t.cleanup());

  it('a repeat waits for its original: a duplicate once the original is stored, refused with it when it is refused', async () => {
    await t.broker.createQueue('q', { maxLength: 1, overflow: 'reject' });
    await t.broker.publish('q', { payload: 'filler' });
    const original = t.broker.publish('q', { payload: 'x', dedupId: 'x' });
    const repeat = t.broker.publish('q', { payload: 'x', dedupId: 'x' });
    const [o, r] = await Promise.allSettled([original, repeat]);
    expect(o.status === 'rejected' && isWharfError(o.reason, 'QUEUE_FULL')).toBe(true);
    // The repeat was not told "stored": it was stored itself or refused in the same way.
    expect(r.status === 'rejected' && isWharfError(r.reason, 'QUEUE_FULL')).toBe(true);
    expect((await qstats(t, 'q')).depth).toBe(1);

    // With room, the repeat of a stored original is its duplicate.
    await (await t.broker.receive('q'))[0].ack();
    const [a, b] = await Promise.all([
      t.broker.publish('q', { payload: 'y', dedupId: 'y' }),
      t.broker.publish('q', { payload: 'y', dedupId: 'y' }),
    ]);
    expect(b).toEqual({ id: a.id, duplicate: true });
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['y']);
  });

  it("'block': a repeat of an original that times out is stored itself once there is room", async () => {
    await t.broker.createQueue('q', { maxLength: 1, overflow: 'block', blockTimeoutMs: 100 });
    await t.broker.publish('q', { payload: 'filler' });
    const original = t.broker.publish('q', { payload: 'x', dedupId: 'x' }).catch((e: unknown) => e);
    await settle();
    let repeatDone = false;
    const repeat = t.broker.publish('q', { payload: 'x', dedupId: 'x' }).finally(() => (repeatDone = true));
    await settle();
    expect(repeatDone).toBe(false); // not answered while its original is on its way
    t.clock.advance(100);
    expect(isWharfError(await original, 'QUEUE_FULL')).toBe(true);
    await settle();
    expect(repeatDone).toBe(false); // now waiting for room itself
    await (await t.broker.receive('q'))[0].ack();
    const stored = await repeat;
    expect(stored.duplicate).toBeUndefined();
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['x']);
  });

  it('the same dedupId twice in one batch stores it once', async () => {
    await t.broker.createQueue('q');
    const [a, b] = await t.broker.publish('q', [
      { payload: 1, dedupId: 'k' },
      { payload: 2, dedupId: 'k' },
    ]);
    expect(b).toEqual({ id: a.id, duplicate: true });
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([1]);
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
