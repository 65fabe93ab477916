// stats(queue): depth, in-flight, delayed, dead-lettered, DLQ depth, oldest age, rates.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { openTestBroker, qstats, type TestBroker } from './queue-helpers.js';

describe('queue stats', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
  });
  afterEach(() => t.cleanup());

  it('a nack refused for its delayMs is not counted as a nack or an error, and leaves the lease', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', { payload: 1 });
    const [m] = await t.broker.receive('q');
    await expect(m.nack({ delayMs: -1, error: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const s = await qstats(t, 'q');
    expect([s.nackRate, s.errorRate, s.inFlight]).toEqual([0, 0, 1]);
    await m.ack();
  });

  it('counts ready, in-flight, delayed and dead-lettered messages, and the oldest age', async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { deadLetterQueue: 'q.dlq' });
    await t.broker.publish('q', [
      { payload: 1 },
      { payload: 2 },
      { payload: 3 },
      { payload: 4 },
      { payload: 'later', delayMs: 60_000 },
    ]);
    t.clock.advance(2000);
    const [a, b, c] = await t.broker.receive('q', { max: 3 });
    await a.ack();
    await b.nack({ delayMs: 5000, error: 'x' });
    await c.nack({ requeue: false });
    const s = await qstats(t, 'q');
    expect(s).toMatchObject({
      kind: 'queue',
      name: 'q',
      depth: 1,
      inFlight: 0,
      delayed: 2,
      deadLettered: 1,
      dlqDepth: 1,
      oldestAgeMs: 2000,
    });
    expect(s.publishRate).toBeGreaterThan(0);
    expect(s.deliverRate).toBeGreaterThan(0);
    expect(s.ackRate).toBeGreaterThan(0);
    expect(s.nackRate).toBeGreaterThan(0);
    expect(s.errorRate).toBeGreaterThan(0);
    expect(s.bytes).toBeGreaterThan(0);
    const [d] = await t.broker.receive('q');
    expect((await qstats(t, 'q')).inFlight).toBe(1);
    await d.ack();
  });

  it('is one instant: an ack and a receive while its oldest record is read do not show in the counts it returns', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    const [a] = await t.broker.receive('q');
    // The record read waits until the ack and the receive are done.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const readOne = QueueEngine.prototype.readOne;
    const spy = vi.spyOn(QueueEngine.prototype, 'readOne').mockImplementation(async function (
      this: QueueEngine,
      level: number,
      offset: number,
    ) {
      await gate;
      return readOne.call(this, level, offset);
    });
    const pending = qstats(t, 'q'); // depth 2, in flight 1 now; its record read is still to come
    const [b] = await t.broker.receive('q');
    await a.ack();
    open();
    const s = await pending;
    spy.mockRestore();
    expect([s.depth, s.inFlight]).toEqual([2, 1]);
    expect([(await qstats(t, 'q')).depth, (await qstats(t, 'q')).inFlight]).toEqual([1, 1]);
    await b.ack();
  });
});
