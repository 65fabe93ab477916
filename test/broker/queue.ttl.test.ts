// Message expiry: per message and per queue; expired messages are dropped or dead-lettered, never delivered.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { WharfError } from '../../src/common/index.js';
import { openTestBroker, type TestBroker, payloads, qstats } from './queue-helpers.js';

describe('message expiry', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
  });
  afterEach(() => t.cleanup());

  it('drops a message whose ttlMs passed before delivery', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', [
      { payload: 'short', ttlMs: 100 },
      { payload: 'long', ttlMs: 10_000 },
      { payload: 'forever' },
    ]);
    t.clock.advance(100);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['long', 'forever']);
    expect((await qstats(t, 'q')).expired).toBe(1);
  });

  it('applies the queue ttl to messages without their own', async () => {
    await t.broker.createQueue('q', { ttlMs: 1000 });
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b', ttlMs: 5000 }]);
    t.clock.advance(2000);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['b']);
  });

  it('a message that expires while waiting for redelivery is not delivered again', async () => {
    await t.broker.createQueue('q', { visibilityTimeoutMs: 500 });
    await t.broker.publish('q', { payload: 'x', ttlMs: 1000 });
    expect((await t.broker.receive('q')).length).toBe(1);
    t.clock.advance(1000);
    expect(await t.broker.receive('q')).toEqual([]);
  });

  it("onExpire 'dead-letter' moves expired messages to the dead-letter queue", async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { ttlMs: 100, onExpire: 'dead-letter', deadLetterQueue: 'q.dlq' });
    await t.broker.publish('q', { payload: 'stale' });
    t.clock.advance(100);
    expect(await t.broker.receive('q')).toEqual([]);
    const [dead] = await t.broker.receive('q.dlq');
    expect(dead.payload).toBe('stale');
    expect(dead.headers['x-dead-letter-reason']).toBe('expired');
    expect(dead.headers['x-source-queue']).toBe('q');
  });

  it('a FIFO message that expires while held behind its group, and whose dead letter cannot be written, stays held: dead-lettered by a later take, before the rest of its group', async () => {
    await t.broker.createQueue('f.dlq');
    await t.broker.createQueue('f', {
      fifo: true,
      visibilityTimeoutMs: 60_000,
      onExpire: 'dead-letter',
      deadLetterQueue: 'f.dlq',
    });
    await t.broker.publish('f', [
      { payload: 'first', groupId: 'G' },
      { payload: 'stale', groupId: 'G', ttlMs: 100 },
      { payload: 'next', groupId: 'G' },
    ]);
    const [first] = await t.broker.receive('f', { max: 10 }); // 'stale' and 'next' are held behind it
    expect(first.payload).toBe('first');
    t.clock.advance(100);
    await first.ack(); // the group is free: its held head, 'stale', is expired
    const failure = new WharfError('UNAVAILABLE', 'dead-letter queue unavailable');
    const append = vi.spyOn(QueueEngine.prototype, 'appendRecords').mockRejectedValueOnce(failure);
    try {
      await expect(t.broker.receive('f', { max: 10 })).rejects.toMatchObject({ code: 'UNAVAILABLE', cause: failure }); // as a non-FIFO expiry's take does
    } finally {
      append.mockRestore();
    }
    expect(await qstats(t, 'f')).toMatchObject({ depth: 2, inFlight: 0, deadLettered: 0, expired: 0 });
    expect(payloads(await t.broker.receive('f', { max: 10 }))).toEqual(['next']);
    expect(payloads(await t.broker.receive('f.dlq', { max: 10 }))).toEqual(['stale']);
    expect(await qstats(t, 'f')).toMatchObject({ deadLettered: 1, expired: 1, inFlight: 1 });
  });

  it('a receive that fails on an expired message whose dead letter cannot be written gives back, uncounted, what it leased before it', async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', {
      visibilityTimeoutMs: 60_000,
      maxDeliveries: 1,
      onExpire: 'dead-letter',
      deadLetterQueue: 'q.dlq',
    });
    await t.broker.publish('q', [{ payload: 'fresh' }, { payload: 'stale', ttlMs: 100 }]);
    t.clock.advance(100);
    const failure = new WharfError('UNAVAILABLE', 'dead-letter queue unavailable');
    const append = vi.spyOn(QueueEngine.prototype, 'appendRecords').mockRejectedValueOnce(failure);
    try {
      await expect(t.broker.receive('q', { max: 10 })).rejects.toMatchObject({ code: 'UNAVAILABLE', cause: failure }); // 'fresh' was leased before 'stale'
    } finally {
      append.mockRestore();
    }
    expect(await qstats(t, 'q')).toMatchObject({ depth: 2, inFlight: 0, deadLettered: 0, receiveErrors: 1 });
    const [fresh] = await t.broker.receive('q', { max: 10 }); // not left leased to nobody until its lease ran out
    expect(fresh).toMatchObject({ payload: 'fresh', deliveryCount: 1 });
    await fresh.ack();
    const dead = await t.broker.receive('q.dlq', { max: 10 });
    expect(dead.map((m) => [m.payload, m.headers['x-dead-letter-reason']])).toEqual([['stale', 'expired']]);
  });
});
