// FIFO queues: strict order per groupId, one in-flight message per group, groups in parallel; dedup.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DedupWindow } from '../../src/broker/queues/dedup-window.js';
import { openTestBroker, type TestBroker, qstats } from './queue-helpers.js';

describe('FIFO queues', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('f', { fifo: true, visibilityTimeoutMs: 1000 });
  });
  afterEach(() => t.cleanup());

  it('refuses a per-message delay (as SQS FIFO queues do), so no message overtakes a delayed one of its group; the queue delay keeps the order', async () => {
    const err = await t.broker
      .publish('f', [
        { payload: 'm1', groupId: 'G', delayMs: 1000 },
        { payload: 'm2', groupId: 'G' },
      ])
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(String((err as Error).message)).toMatch(/FIFO queue takes no per-message delay/);
    expect((await qstats(t, 'f')).depth).toBe(0);
    await t.broker.publish('f', { payload: 'zero', groupId: 'G', delayMs: 0 }); // no delay is no delay
    expect((await t.broker.receive('f')).map((m) => m.payload)).toEqual(['zero']);

    await t.broker.createQueue('slow', { fifo: true, delayMs: 1000 });
    await t.broker.publish('slow', { payload: 'm1', groupId: 'G' });
    t.clock.advance(500);
    await t.broker.publish('slow', { payload: 'm2', groupId: 'G' });
    t.clock.advance(1000);
    const first = await t.broker.receive('slow', { max: 10 });
    expect(first.map((m) => m.payload)).toEqual(['m1']);
    await first[0].ack();
    expect((await t.broker.receive('slow', { max: 10 })).map((m) => m.payload)).toEqual(['m2']);
  });

  it("holds a group's next message while one of its messages is in flight; other groups go in parallel", async () => {
    await t.broker.publish('f', [
      { payload: 'a1', groupId: 'A' },
      { payload: 'a2', groupId: 'A' },
      { payload: 'b1', groupId: 'B' },
      { payload: 'a3', groupId: 'A' },
      { payload: 'b2', groupId: 'B' },
    ]);
    const c1 = await t.broker.receive('f', { max: 10 });
    expect(c1.map((m) => m.payload)).toEqual(['a1', 'b1']);
    const c2 = await t.broker.receive('f', { max: 10 });
    expect(c2).toEqual([]);
    await c1[0].ack(); // a1
    const c3 = await t.broker.receive('f', { max: 10 });
    expect(c3.map((m) => m.payload)).toEqual(['a2']);
    await c1[1].ack(); // b1
    await c3[0].ack(); // a2
    expect((await t.broker.receive('f', { max: 10 })).map((m) => m.payload).sort()).toEqual(['a3', 'b2']);
  });

  it('a nacked message is redelivered before the rest of its group', async () => {
    await t.broker.publish('f', [
      { payload: 1, groupId: 'G' },
      { payload: 2, groupId: 'G' },
    ]);
    const [m1] = await t.broker.receive('f', { max: 10 });
    await m1.nack({ delayMs: 500 });
    expect(await t.broker.receive('f', { max: 10 })).toEqual([]);
    t.clock.advance(500);
    const [again] = await t.broker.receive('f', { max: 10 });
    expect(again.payload).toBe(1);
    expect(again.deliveryCount).toBe(2);
    await again.ack();
    expect((await t.broker.receive('f', { max: 10 })).map((m) => m.payload)).toEqual([2]);
  });

  it('an expired lease keeps the group order', async () => {
    await t.broker.publish('f', [
      { payload: 1, groupId: 'G' },
      { payload: 2, groupId: 'G' },
    ]);
    await t.broker.receive('f');
    t.clock.advance(1000);
    const [m] = await t.broker.receive('f', { max: 10 });
    expect(m.payload).toBe(1);
  });

  it("overflow 'drop-oldest' drops the oldest message held behind its group when the rest is in flight", async () => {
    await t.broker.createQueue('fd', { fifo: true, maxLength: 3, overflow: 'drop-oldest' });
    await t.broker.publish('fd', [
      { payload: 1, groupId: 'g' },
      { payload: 2, groupId: 'g' },
      { payload: 3, groupId: 'g' },
    ]);
    const [m1] = await t.broker.receive('fd');
    expect(m1.payload).toBe(1);
    expect(await t.broker.receive('fd')).toEqual([]); // 2 and 3 are held behind 1
    expect((await qstats(t, 'fd')).depth).toBe(2);
    await t.broker.publish('fd', { payload: 4, groupId: 'g' });
    expect((await qstats(t, 'fd')).dropped).toBe(1);
    await m1.ack();
    const order: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const [m] = await t.broker.receive('fd');
      order.push(m.payload);
      await m.ack();
    }
    expect(order).toEqual([3, 4]);
    expect((await qstats(t, 'fd')).depth).toBe(0);
  });

  it('drops a duplicate dedupId within the window and resolves with the original id', async () => {
    const [first] = await t.broker.publish('f', [{ payload: 'x', groupId: 'G', dedupId: 'd-1' }]);
    const again = await t.broker.publish('f', { payload: 'x again', groupId: 'G', dedupId: 'd-1' });
    expect(again).toEqual({ id: first.id, duplicate: true });
    t.clock.advance(5 * 60_000);
    const later = await t.broker.publish('f', { payload: 'x later', groupId: 'G', dedupId: 'd-1' });
    expect(later.duplicate).toBeUndefined();
    expect(later.id).not.toBe(first.id);
    const got: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      for (const m of await t.broker.receive('f', { max: 10 })) {
        got.push(m.payload);
        await m.ack();
      }
    }
    expect(got).toEqual(['x', 'x later']);
  });

  it('a batch refused as invalid leaves its dedupIds unseen: a later publish with one of them is stored', async () => {
    await expect(
      t.broker.publish('f', [
        { payload: 'x', groupId: 'G', dedupId: 'd-1' },
        { payload: 'bad', groupId: 'G', headers: { n: 5 as unknown as string } },
      ]),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const retried = await t.broker.publish('f', { payload: 'x', groupId: 'G', dedupId: 'd-1' });
    expect(retried.duplicate).toBeUndefined();
    expect((await t.broker.receive('f', { max: 10 })).map((m) => m.payload)).toEqual(['x']);
  });

  it('a repeated dedupId within one batch is a duplicate of the first', async () => {
    const [first, second] = await t.broker.publish('f', [
      { payload: 'x', groupId: 'G', dedupId: 'd-1' },
      { payload: 'x again', groupId: 'G', dedupId: 'd-1' },
    ]);
    expect(second).toEqual({ id: first.id, duplicate: true });
  });

  it('content-based dedup drops a repeated payload', async () => {
    await t.broker.createQueue('c', { fifo: true, contentBasedDedup: true, dedupWindowMs: 1000 });
    const [a] = await t.broker.publish('c', [{ payload: { n: 1 } }]);
    const [b, c] = await t.broker.publish('c', [{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    expect(b).toEqual({ id: a.id, duplicate: true });
    expect(c.duplicate).toBeUndefined();
    expect((await qstats(t, 'c')).depth).toBe(2);
  });
});

describe('DedupWindow', () => {
  it('a key remembered out of time order is not a duplicate once its own window is over', () => {
    const w = new DedupWindow(1000);
    w.remember('id:new', 'b', 500);
    w.remember('id:old', 'a', 0); // behind a newer entry: a sweep stops before it
    expect(w.lookup('id:old', 999)).toBe('a');
    expect(w.lookup('id:old', 1000)).toBeUndefined();
    expect(w.lookup('id:new', 1000)).toBe('b');
    expect(w.size).toBe(1);
  });
});
