// Point-to-point with competing consumers: each message goes to one consumer at a time.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestBroker, type TestBroker } from './queue-helpers.js';

describe('competing consumers', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
  });
  afterEach(() => t.cleanup());

  it('publish resolves with ids; concurrent receivers split the messages without overlap', async () => {
    await t.broker.createQueue('jobs');
    const results = await t.broker.publish(
      'jobs',
      Array.from({ length: 100 }, (_, i) => ({ payload: i })),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(100);
    const [a, b, c] = await Promise.all([
      t.broker.receive('jobs', { max: 40 }),
      t.broker.receive('jobs', { max: 40 }),
      t.broker.receive('jobs', { max: 40 }),
    ]);
    const all = [...a, ...b, ...c].map((m) => m.payload as number);
    expect(all.length).toBe(100);
    expect(new Set(all).size).toBe(100);
    expect(a.every((m) => m.deliveryCount === 1 && m.queue === 'jobs')).toBe(true);
    expect(await t.broker.receive('jobs', { max: 10 })).toEqual([]);
  });

  it('a standard queue delivers in publish order (best-effort FIFO) and keeps message fields', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', { type: 'order.created', key: 'k', headers: { a: 'b' }, payload: { n: 1 } });
    await t.broker.publish('q', { payload: new Uint8Array([1, 2, 3]) });
    const [m1, m2] = await t.broker.receive('q', { max: 2 });
    expect(m1).toMatchObject({
      type: 'order.created',
      key: 'k',
      headers: { a: 'b' },
      payload: { n: 1 },
      deliveryCount: 1,
    });
    expect(m2.payload).toEqual(new Uint8Array([1, 2, 3]));
    expect(typeof m1.timestamp).toBe('number');
  });

  it('an acked message is never delivered again', async () => {
    await t.broker.createQueue('q', { visibilityTimeoutMs: 1000 });
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    const [m] = await t.broker.receive('q');
    await m.ack();
    t.clock.advance(5000);
    const rest = await t.broker.receive('q', { max: 10 });
    expect(rest.map((x) => x.payload)).toEqual(['b']);
  });
});
