// Message expiry: per message and per queue; expired messages are dropped or dead-lettered, never delivered.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestBroker, type TestBroker, qstats } from './queue-helpers.js';

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
});
