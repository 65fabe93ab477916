// Delayed delivery: per message and queue default; visible on time, also after a restart.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QUEUE_DEFAULTS } from '../../src/broker/queues/queue-config.js';
import { openTestBroker, type TestBroker, qstats } from './queue-helpers.js';

describe('delayed messages', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker({ disk: true });
  });
  afterEach(() => t.cleanup());

  it('a message with delayMs is invisible until its time, then delivered', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', [{ payload: 'late', delayMs: 1000 }, { payload: 'now' }]);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['now']);
    expect((await qstats(t, 'q')).delayed).toBe(1);
    t.clock.advance(999);
    expect(await t.broker.receive('q')).toEqual([]);
    t.clock.advance(1);
    expect((await t.broker.receive('q')).map((m) => m.payload)).toEqual(['late']);
  });

  it('delayed messages come out in due order, not publish order', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', [
      { payload: 'c', delayMs: 300 },
      { payload: 'a', delayMs: 100 },
      { payload: 'b', delayMs: 200 },
    ]);
    const out: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      t.clock.advance(100);
      out.push(...(await t.broker.receive('q', { max: 10 })).map((m) => m.payload));
    }
    expect(out).toEqual(['a', 'b', 'c']);
  });

  it('uses the queue default delay for messages that set none', async () => {
    await t.broker.createQueue('q', { delayMs: 500 });
    await t.broker.publish('q', [{ payload: 'default' }, { payload: 'explicit', delayMs: 0 }]);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['explicit']);
    t.clock.advance(500);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['default']);
  });

  it('a long-polling receiver gets a delayed message when it falls due', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', { payload: 'soon', delayMs: 300 });
    const p = t.broker.receive('q', { waitMs: 1000 });
    await new Promise((r) => setImmediate(r));
    t.clock.advance(300);
    expect((await p).map((m) => m.payload)).toEqual(['soon']);
  });

  it('a delayed message left out of a full delay index is delivered when due, not after one published later', async () => {
    const tb = await openTestBroker(); // in memory: the index's capacity in messages makes a disk run slow
    try {
      await tb.broker.createQueue('q');
      const capacity = QUEUE_DEFAULTS.delayIndexCapacity;
      await tb.broker.publish(
        'q',
        Array.from({ length: capacity - 1 }, (_, i) => ({ payload: i, delayMs: 1000 })),
      );
      await tb.broker.publish('q', { payload: 'at3000', delayMs: 3000 }); // the index is full now
      await tb.broker.publish('q', { payload: 'at5000', delayMs: 5000 }); // left out of it
      tb.clock.advance(1000);
      for (let got = await tb.broker.receive('q', { max: 1000 }); got.length > 0;) {
        await Promise.all(got.map((m) => m.ack()));
        got = await tb.broker.receive('q', { max: 1000 });
      }
      await tb.broker.publish('q', { payload: 'far', delayMs: 100_000 }); // the index has room again
      tb.clock.advance(2000);
      expect((await tb.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['at3000']);
      tb.clock.advance(2000);
      expect((await tb.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['at5000']);
    } finally {
      await tb.cleanup();
    }
  }, 60_000);

  it('delayed messages survive a restart and become visible on time', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', [
      { payload: 'd1', delayMs: 1000 },
      { payload: 'd2', delayMs: 5000 },
    ]);
    await t.restart();
    expect(await t.broker.receive('q')).toEqual([]);
    t.clock.advance(1000);
    const [d1] = await t.broker.receive('q', { max: 10 });
    expect(d1.payload).toBe('d1');
    await d1.ack();
    await t.restart();
    t.clock.advance(4000);
    expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['d2']);
  });
});
