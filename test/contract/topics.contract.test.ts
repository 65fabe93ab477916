// Topics and consumer groups behave the same embedded and over the native protocol.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WharfError } from '../../src/common/index.js';
import type { TopicMessage } from '../../src/broker/index.js';
import { factories, waitFor, type Target } from './factories.js';

describe.each(factories)('topics contract (%s)', (_name, make) => {
  let t: Target;
  beforeEach(async () => {
    t = await make();
  });
  afterEach(async () => {
    await t.close();
  });

  it('creates, lists, describes and deletes a topic', async () => {
    const info = await t.wharf.createTopic('orders', { partitions: 3 });
    expect(info).toMatchObject({ name: 'orders', kind: 'topic', partitions: 3 });
    expect((await t.wharf.listTopics()).map((x) => x.name)).toEqual(['orders']);
    expect(await t.wharf.describeTopic('orders')).toEqual(info);
    await t.wharf.deleteTopic('orders');
    expect(await t.wharf.listTopics()).toEqual([]);
  });

  it('fails with the same error codes', async () => {
    await t.wharf.createTopic('a');
    await expect(t.wharf.createTopic('a')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await expect(t.wharf.describeTopic('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.wharf.createTopic('bad name!')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(t.wharf.publish('missing', { payload: 1 })).rejects.toBeInstanceOf(WharfError);
    await expect(t.wharf.createTopic('b', { partitions: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a subscription ends with NOT_FOUND when its topic is deleted, and with null when closed', async () => {
    await t.wharf.createTopic('doomed');
    await t.wharf.createTopic('kept');
    const seen: unknown[] = [];
    const doomed = await t.wharf.subscribe(
      'doomed',
      { group: 'g', from: 'earliest' },
      (m: TopicMessage) => void seen.push(m.payload),
    );
    const kept = await t.wharf.subscribe('kept', { group: 'g' }, () => undefined);
    await t.wharf.publish('doomed', { payload: 'before' });
    await waitFor(() => seen.length === 1);
    await t.wharf.deleteTopic('doomed');
    const reason = await doomed.ended;
    expect(reason).toMatchObject({ code: 'NOT_FOUND' });
    expect(reason?.message).toContain('doomed');
    await expect(doomed.seek('earliest')).rejects.toMatchObject({ code: 'CLOSED' });
    await t.wharf.createTopic('doomed');
    await t.wharf.publish('doomed', { payload: 'after' });
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual(['before']);
    await doomed.close();
    await kept.close();
    expect(await kept.ended).toBeNull();
  });

  it('publishes single messages and batches with partition and offset', async () => {
    await t.wharf.createTopic('orders', { partitions: 1 });
    const one = await t.wharf.publish('orders', { key: 'k', type: 'order.created', payload: { amount: 99.99 } });
    expect(one).toMatchObject({ partition: 0, offset: 0 });
    const many = await t.wharf.publish('orders', [{ payload: 1 }, { payload: 2 }]);
    expect(many.map((r) => r.offset)).toEqual([1, 2]);
  });

  it.each([
    ['INVALID_ARGUMENT', { payload: 'bad', partition: 7 }],
    ['MESSAGE_TOO_LARGE', { payload: 'x'.repeat(2048) }],
  ] as const)(
    'publishes not awaited are stored in call order when one the broker refuses (%s) was published with them',
    async (code, refusedMessage) => {
      await t.wharf.createTopic('orders', { partitions: 1, maxMessageBytes: 1024 });
      const refused = t.wharf.publish('orders', refusedMessage).catch((err: WharfError) => err.code);
      const b = t.wharf.publish('orders', { payload: 'b' }); // in the same tick as the refused one
      await new Promise((r) => setImmediate(r));
      const c = t.wharf.publish('orders', { payload: 'c' });
      const de = t.wharf.publish('orders', [{ payload: 'd' }, { payload: 'e' }]);
      const f = t.wharf.publish('orders', { payload: 'f' });
      expect(await refused).toBe(code);
      const results = [await b, await c, ...(await de), await f];
      expect(results.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
    },
  );

  it('delivers every field of a message to a group member in offset order', async () => {
    await t.wharf.createTopic('orders', { partitions: 1 });
    const bytes = new Uint8Array([0, 1, 2, 255]);
    await t.wharf.publish('orders', [
      { id: 'm1', key: 'order-1', type: 'order.created', headers: { region: 'eu' }, payload: { amount: 5 } },
      { id: 'm2', payload: bytes },
    ]);
    const got: TopicMessage[] = [];
    const sub = await t.wharf.subscribe('orders', { group: 'billing', from: 'earliest' }, (m) => {
      got.push(m);
    });
    await waitFor(() => got.length === 2);
    await sub.close();
    expect(got[0]).toMatchObject({
      id: 'm1',
      key: 'order-1',
      type: 'order.created',
      headers: { region: 'eu' },
      payload: { amount: 5 },
      topic: 'orders',
      partition: 0,
      offset: 0,
      deliveryCount: 1,
    });
    expect(got[0].timestamp).toBeGreaterThan(0);
    expect(got[1].id).toBe('m2');
    expect(Array.from(got[1].payload as Uint8Array)).toEqual([0, 1, 2, 255]);
    expect(sub.group).toBe('billing');
  });

  it('a group resumes after its committed offset; a handler that throws sees the message again', async () => {
    await t.wharf.createTopic('orders', { partitions: 1 });
    await t.wharf.publish('orders', [{ payload: 1 }, { payload: 2 }]);
    const seen: Array<[number, number]> = [];
    let failedOnce = false;
    const sub = await t.wharf.subscribe('orders', { group: 'g', from: 'earliest' }, (m) => {
      if (m.offset === 1 && !failedOnce) {
        failedOnce = true;
        throw new Error('transient');
      }
      seen.push([m.offset, m.deliveryCount]);
    });
    await waitFor(() => seen.length === 2);
    expect(seen).toEqual([
      [0, 1],
      [1, 2],
    ]);
    await sub.close();
    await t.wharf.publish('orders', { payload: 3 });
    const later: number[] = [];
    const again = await t.wharf.subscribe('orders', { group: 'g', from: 'earliest' }, (m) => {
      later.push(m.offset);
    });
    await waitFor(() => later.length === 1);
    await again.close();
    expect(later).toEqual([2]);
  });

  it('while a message is retried, the group has committed the messages before it', async () => {
    await t.wharf.createTopic('orders', { partitions: 1 });
    await t.wharf.publish(
      'orders',
      Array.from({ length: 10 }, (_, i) => ({ payload: i })),
    );
    const sub = await t.wharf.subscribe('orders', { group: 'g', from: 'earliest' }, (m) => {
      if (m.payload === 5) throw new Error('poison'); // retried with backoff, for ever
    });
    const group = async () => {
      const s = await t.wharf.stats('orders');
      return s.kind === 'topic' ? { committed: s.groups.g?.partitions[0].committed, lag: s.groups.g?.lag } : {};
    };
    const deadline = Date.now() + 5_000;
    while ((await group()).committed !== 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await group()).toEqual({ committed: 5, lag: 5 });
    await sub.close();
  });

  it('two members of one group split the partitions; seek replays', async () => {
    await t.wharf.createTopic('orders', { partitions: 2 });
    const a = await t.wharf.subscribe('orders', { group: 'g', from: 'earliest' }, () => undefined);
    expect(a.assignments()).toEqual([0, 1]);
    await t.wharf.publish('orders', [{ partition: 0, payload: 'x' }]);
    const replay: number[] = [];
    const r = await t.wharf.subscribe('orders', { from: 'earliest' }, (m) => {
      replay.push(m.offset);
    });
    await waitFor(() => replay.length === 1);
    await r.seek({ offset: 0 });
    await waitFor(() => replay.length === 2);
    expect(replay).toEqual([0, 0]);
    await r.close();
    await a.close();
  });

  it("ackMode 'auto' delivers every message in offset order", async () => {
    await t.wharf.createTopic('fast', { partitions: 1 });
    await t.wharf.publish(
      'fast',
      Array.from({ length: 200 }, (_, i) => ({ payload: i })),
    );
    const got: number[] = [];
    const sub = await t.wharf.subscribe('fast', { group: 'g', from: 'earliest', ackMode: 'auto' }, (m) => {
      got.push(m.offset);
    });
    await waitFor(() => got.length === 200);
    await sub.close();
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('reports topic stats with group lag', async () => {
    await t.wharf.createTopic('orders', { partitions: 1 });
    await t.wharf.publish('orders', [{ payload: 1 }, { payload: 2 }]);
    const stats = await t.wharf.stats('orders');
    expect(stats.kind).toBe('topic');
    if (stats.kind === 'topic')
      expect(stats.partitions[0]).toMatchObject({ partition: 0, startOffset: 0, endOffset: 2 });
  });
});
