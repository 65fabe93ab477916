// receive long-polls: returns as soon as a message is ready, or empty after waitMs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QUEUE_DEFAULTS } from '../../src/broker/queues/queue-config.js';
import { openTestBroker, settle, type TestBroker } from './queue-helpers.js';

describe('long polling', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
  });
  afterEach(() => t.cleanup());

  it('returns as soon as a message is published', async () => {
    let got: unknown[] | null = null;
    const p = t.broker.receive('q', { waitMs: 10_000 }).then((m) => (got = m.map((x) => x.payload)));
    await settle();
    expect(got).toBeNull();
    await t.broker.publish('q', { payload: 'hello' });
    await p;
    expect(got).toEqual(['hello']);
  });

  it('returns empty after waitMs', async () => {
    let got: unknown[] | null = null;
    const p = t.broker.receive('q', { waitMs: 2000 }).then((m) => (got = m));
    await settle();
    t.clock.advance(1999);
    await settle();
    expect(got).toBeNull();
    t.clock.advance(1);
    await p;
    expect(got).toEqual([]);
  });

  it('a long poll that met maxTrackedMessages returns as soon as an ack frees room', async () => {
    const limits = QUEUE_DEFAULTS as { maxTrackedMessages: number };
    const saved = limits.maxTrackedMessages;
    limits.maxTrackedMessages = 2; // the same path as the real limit, at a size a test can reach
    try {
      await t.broker.publish('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
      const leased = await t.broker.receive('q', { max: 10 });
      expect(leased.map((m) => m.payload)).toEqual([1, 2]); // message 3 stays ready: no room to track it
      let got: unknown[] | null = null;
      const p = t.broker.receive('q', { waitMs: 20_000 }).then((m) => (got = m.map((x) => x.payload)));
      await settle();
      expect(got).toBeNull();
      await leased[0].ack();
      await settle(10);
      expect(got).toEqual([3]);
      await p;
    } finally {
      limits.maxTrackedMessages = saved;
    }
  });

  it('rejects a wait longer than maxWaitMs', async () => {
    await expect(t.broker.receive('q', { waitMs: 60_000 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
