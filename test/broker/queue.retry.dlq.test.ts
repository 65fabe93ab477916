// Nack with retry backoff; after maxDeliveries the message is dead-lettered with headers saying why; redrive.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { QUEUE_DEFAULTS } from '../../src/broker/queues/queue-config.js';
import { WharfError } from '../../src/common/index.js';
import { openTestBroker, type TestBroker, qstats, settle } from './queue-helpers.js';

describe('retries and dead-lettering', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('work.dlq');
    await t.broker.createQueue('work', {
      maxDeliveries: 3,
      deadLetterQueue: 'work.dlq',
      visibilityTimeoutMs: 10_000,
      retry: { initialDelayMs: 100, multiplier: 2, maxDelayMs: 1000, jitter: 0 },
    });
  });
  afterEach(() => t.cleanup());

  it('a nacked message comes back after exponential backoff, with deliveryCount + 1', async () => {
    await t.broker.publish('work', { payload: 'job' });
    const [m1] = await t.broker.receive('work');
    await m1.nack({ error: 'boom' });
    t.clock.advance(99);
    expect(await t.broker.receive('work')).toEqual([]);
    t.clock.advance(1);
    const [m2] = await t.broker.receive('work');
    expect(m2.deliveryCount).toBe(2);
    await m2.nack();
    t.clock.advance(199);
    expect(await t.broker.receive('work')).toEqual([]);
    t.clock.advance(1);
    expect((await t.broker.receive('work'))[0].deliveryCount).toBe(3);
  });

  it('nack with delayMs overrides the backoff; delayMs 0 is immediate', async () => {
    await t.broker.publish('work', { payload: 'job' });
    const [m1] = await t.broker.receive('work');
    await m1.nack({ delayMs: 0 });
    const [m2] = await t.broker.receive('work');
    expect(m2.deliveryCount).toBe(2);
  });

  it('after maxDeliveries the message moves to the dead-letter queue with headers saying why', async () => {
    await t.broker.publish('work', { payload: 'poison', headers: { trace: 't1' } });
    const firstAt = t.clock.now();
    for (let i = 1; i <= 3; i++) {
      const [m] = await t.broker.receive('work');
      expect(m.deliveryCount).toBe(i);
      if (i < 3) t.clock.advance(10); // keep times distinct
      await m.nack({ error: `failure ${i}`, delayMs: 0 });
    }
    expect(await t.broker.receive('work')).toEqual([]);
    expect(await qstats(t, 'work')).toMatchObject({ deadLettered: 1, dlqDepth: 1, depth: 0 });
    const [dead] = await t.broker.receive('work.dlq');
    expect(dead.payload).toBe('poison');
    expect(dead.headers).toMatchObject({
      trace: 't1',
      'x-dead-letter-reason': 'max-deliveries',
      'x-dead-letter-error': 'failure 3',
      'x-delivery-count': '3',
      'x-source-queue': 'work',
      'x-first-delivered-at': String(firstAt),
      'x-last-delivered-at': String(firstAt + 20),
    });
  });

  it('a nack whose error is not a string is INVALID_ARGUMENT, even at maxDeliveries, and changes nothing', async () => {
    await t.broker.publish('work', { payload: 'job' });
    for (let i = 1; i < 3; i++) await (await t.broker.receive('work'))[0].nack({ delayMs: 0 });
    const [m] = await t.broker.receive('work');
    expect(m.deliveryCount).toBe(3); // = maxDeliveries: this nack would dead-letter it
    const err = await m.nack({ error: 42 as unknown as string }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WharfError);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/nack error is number/) });
    expect(await qstats(t, 'work')).toMatchObject({ inFlight: 1, deadLettered: 0 });
    await m.nack({ error: 'failure 3' }); // the delivery is still current
    expect((await t.broker.receive('work.dlq'))[0].headers['x-dead-letter-error']).toBe('failure 3');
  });

  it('a nack whose requeue is not a boolean is INVALID_ARGUMENT and changes nothing (no silent retry of a meant rejection)', async () => {
    await t.broker.publish('work', { payload: 'job' });
    const [m] = await t.broker.receive('work');
    for (const requeue of ['no', 0, null]) {
      const err = await m.nack({ requeue: requeue as unknown as boolean }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/nack requeue is/) });
    }
    expect(await qstats(t, 'work')).toMatchObject({ inFlight: 1, deadLettered: 0 });
    await m.nack({ requeue: false });
    expect((await t.broker.receive('work.dlq'))[0].headers['x-dead-letter-reason']).toBe('rejected');
  });

  it('nack({ requeue: false }) dead-letters at once', async () => {
    await t.broker.publish('work', { payload: 'bad' });
    const [m] = await t.broker.receive('work');
    await m.nack({ requeue: false, error: 'invalid' });
    const [dead] = await t.broker.receive('work.dlq');
    expect(dead.headers['x-dead-letter-reason']).toBe('rejected');
    expect((await qstats(t, 'work')).dlqDepth).toBe(0);
  });

  it('a second nack({ requeue: false }) of the same delivery is RECEIPT_INVALID: the message is dead-lettered once', async () => {
    await t.broker.publish('work', { payload: 'bad' });
    const [m] = await t.broker.receive('work');
    const [first, second] = await Promise.allSettled([m.nack({ requeue: false }), m.nack({ requeue: false })]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({ status: 'rejected', reason: { code: 'RECEIPT_INVALID' } });
    expect((await qstats(t, 'work')).deadLettered).toBe(1);
    expect((await qstats(t, 'work.dlq')).depth).toBe(1);
  });

  it('an ack of a delivery being dead-lettered is RECEIPT_INVALID: the message is not both acked and dead-lettered', async () => {
    await t.broker.publish('work', { payload: 'bad' });
    const [m] = await t.broker.receive('work');
    const [nack, ack] = await Promise.allSettled([m.nack({ requeue: false }), m.ack()]);
    expect(nack.status).toBe('fulfilled');
    expect(ack).toMatchObject({ status: 'rejected', reason: { code: 'RECEIPT_INVALID' } });
    expect((await qstats(t, 'work.dlq')).depth).toBe(1);
  });

  it('a message whose dead letter cannot be written is delivered again after a wait (at least deadLetterRetryMs), not left in flight', async () => {
    await t.broker.publish('work', { payload: 'bad' });
    const [m] = await t.broker.receive('work');
    const failure = new WharfError('UNAVAILABLE', 'dead-letter queue unavailable');
    const append = vi.spyOn(QueueEngine.prototype, 'appendRecords').mockRejectedValueOnce(failure);
    try {
      await expect(m.nack({ requeue: false })).rejects.toMatchObject({
        code: 'UNAVAILABLE',
        cause: failure,
        message: expect.stringContaining(
          'nacked with requeue: false could not be moved to its dead-letter queue "work.dlq"',
        ),
      });
    } finally {
      append.mockRestore();
    }
    const s = await qstats(t, 'work');
    expect([s.depth, s.delayed, s.inFlight, s.deadLettered, s.deadLetterErrors]).toEqual([0, 1, 0, 0, 1]);
    t.clock.advance(QUEUE_DEFAULTS.deadLetterRetryMs - 1); // the retry backoff here is 100 ms: the floor holds
    expect(await t.broker.receive('work')).toEqual([]);
    t.clock.advance(1);
    const [again] = await t.broker.receive('work');
    expect(again.payload).toBe('bad');
    await again.nack({ requeue: false });
    expect((await qstats(t, 'work.dlq')).depth).toBe(1);
  });

  it('a purge of a message whose last lease just expired does not also dead-letter it', async () => {
    await t.broker.publish('work', { payload: 'p' });
    for (let i = 0; i < 2; i++) {
      expect((await t.broker.receive('work')).length).toBe(1);
      t.clock.advance(10_000);
    }
    expect((await t.broker.receive('work'))[0].deliveryCount).toBe(3); // = maxDeliveries
    const purged = t.broker.purgeQueue('work'); // holds the queue's lock until its journal commit
    t.clock.advance(10_000); // the last lease expires meanwhile: its dead letter waits behind the purge
    expect(await purged).toBe(1);
    await settle(10);
    expect((await qstats(t, 'work.dlq')).depth).toBe(0);
    expect((await qstats(t, 'work')).deadLettered).toBe(0);
  });

  it('an expired lease counts as a failed delivery towards maxDeliveries', async () => {
    await t.broker.publish('work', { payload: 'slow' });
    for (let i = 0; i < 3; i++) {
      expect((await t.broker.receive('work')).length).toBe(1);
      t.clock.advance(10_000);
    }
    expect(await t.broker.receive('work')).toEqual([]);
    const [dead] = await t.broker.receive('work.dlq');
    expect(dead.headers['x-delivery-count']).toBe('3');
  });

  it('redrive moves dead letters back to their source queue, or to another, up to max', async () => {
    await t.broker.createQueue('other');
    await t.broker.publish('work', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    for (const m of await t.broker.receive('work', { max: 3 })) await m.nack({ requeue: false });
    expect((await qstats(t, 'work.dlq')).depth).toBe(3);
    expect(await t.broker.redrive('work.dlq', { max: 2 })).toBe(2);
    expect(await t.broker.redrive('work.dlq', { to: 'other' })).toBe(1);
    const back = await t.broker.receive('work', { max: 10 });
    expect(back.map((m) => m.payload)).toEqual([1, 2]);
    expect(back[0].headers['x-dead-letter-reason']).toBeUndefined();
    expect((await t.broker.receive('other')).map((m) => m.payload)).toEqual([3]);
    expect((await qstats(t, 'work.dlq')).depth).toBe(0);
  });

  it("a redriven message's retention counts from the redrive: its target's ttlMs does not expire it at once, and its timestamp stays its first publish", async () => {
    await t.broker.createQueue('short.dlq');
    await t.broker.createQueue('short', { ttlMs: 1000, deadLetterQueue: 'short.dlq' });
    const publishedAt = t.clock.now();
    await t.broker.publish('short', [{ payload: 'a' }, { payload: 'b' }]);
    for (const m of await t.broker.receive('short', { max: 2 })) await m.nack({ requeue: false });
    t.clock.advance(60_000); // the dead letters wait far longer than the queue's ttlMs
    expect(await t.broker.redrive('short.dlq')).toBe(2);
    t.clock.advance(999);
    const [a] = await t.broker.receive('short');
    expect(a).toMatchObject({ payload: 'a', timestamp: publishedAt });
    expect(a.headers).toEqual({}); // neither dead-letter headers nor the broker's own
    t.clock.advance(1);
    expect(await t.broker.receive('short')).toEqual([]); // 'b' expired ttlMs after its redrive
    expect((await qstats(t, 'short')).expired).toBe(1);
  });

  it("a redriven message's age on its target (oldestAgeMs, the oldest-message-age metric) counts from the redrive, not its first publish", async () => {
    await t.broker.publish('work', { payload: 1 });
    const [m] = await t.broker.receive('work');
    await m.nack({ requeue: false });
    t.clock.advance(3_600_000); // an hour in the dead-letter queue
    // Dead-lettering is not a new enqueue: the dead-letter queue shows its whole age.
    expect((await qstats(t, 'work.dlq')).oldestAgeMs).toBe(3_600_000);
    expect(await t.broker.redrive('work.dlq')).toBe(1);
    t.clock.advance(5_000);
    expect((await qstats(t, 'work')).oldestAgeMs).toBe(5_000);
    const [back] = await t.broker.receive('work');
    expect(back.timestamp).toBe(t.clock.now() - 3_605_000); // its timestamp stays its first publish
    expect((await qstats(t, 'work')).oldestAgeMs).toBe(5_000); // in flight, still unsettled
    await back.ack();
    expect((await qstats(t, 'work')).oldestAgeMs).toBe(0);
  });

  it('redrive into the queue being drained is refused, and one whose dead letters come back to it ends after what was there', async () => {
    await t.broker.publish('work', { payload: 1 });
    const [m] = await t.broker.receive('work');
    await m.nack({ requeue: false });
    await expect(t.broker.redrive('work.dlq', { to: 'work.dlq' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await qstats(t, 'work.dlq')).depth).toBe(1);
    // A letter whose x-source-queue names the dead-letter queue itself stays, and the others move;
    // nothing of the batch stays leased.
    await t.broker.publish('work.dlq', { payload: 2, headers: { 'x-source-queue': 'work.dlq' } });
    await t.broker.publish('work.dlq', { payload: 3, headers: { 'x-source-queue': 'work' } });
    expect(await t.broker.redrive('work.dlq')).toBe(2);
    expect((await qstats(t, 'work.dlq')).depth).toBe(1);
    expect((await t.broker.receive('work', { max: 10 })).map((x) => x.payload)).toEqual([1, 3]);
    await expect(t.broker.redrive('work.dlq')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await qstats(t, 'work.dlq')).depth).toBe(1);
  });
});
