// Topic lifecycle and publish: create/list/describe/delete, results once durable, persistence across
// reopen, and every bad input rejected with its code while nothing stored changes.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { TopicMessage } from '../../src/broker/index.js';
import { LIMITS, ManualClock } from '../../src/common/index.js';
import { codeOf, tempDir, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function memBroker(options: Parameters<typeof Broker.open>[0] = { inMemory: true }): Promise<Broker> {
  const b = await Broker.open(options);
  cleanups.push(() => b.close());
  return b;
}

describe('topics: lifecycle and publish', () => {
  it('an in-memory broker creates, lists, describes and deletes topics', async () => {
    const b = await memBroker();
    const info = await b.createTopic('orders', { partitions: 3, retentionMs: 7 * 86_400_000 });
    expect(info).toMatchObject({
      name: 'orders',
      kind: 'topic',
      partitions: 3,
      retentionMs: 604_800_000,
      retentionBytes: null,
      maxMessageBytes: LIMITS.maxMessageBytes,
    });
    await b.createTopic('audit');
    expect((await b.listTopics()).map((t) => t.name)).toEqual(['audit', 'orders']);
    expect(await b.describeTopic('audit')).toMatchObject({ partitions: 1 });
    await b.deleteTopic('audit');
    expect((await b.listTopics()).map((t) => t.name)).toEqual(['orders']);
    expect(await codeOf(b.describeTopic('audit'))).toBe('NOT_FOUND');
  });

  it('publish resolves with id, partition and offset; a batch resolves with one result per message', async () => {
    const b = await memBroker();
    await b.createTopic('orders', { partitions: 3 });
    const one = await b.publish('orders', { key: 'order-456', type: 'order.created', payload: { amount: 99.99 } });
    expect(one).toMatchObject({ partition: expect.any(Number), offset: 0, id: expect.any(String) });
    const batch = await b.publish('orders', [
      { key: 'order-456', payload: 1 },
      { key: 'order-456', payload: 2, id: 'mine' },
    ]);
    expect(batch).toEqual([
      { id: expect.any(String), partition: one.partition, offset: 1 },
      { id: 'mine', partition: one.partition, offset: 2 },
    ]);
  });

  it('delivered messages carry id, type, broker timestamp, key, headers, payload, partition and offset', async () => {
    const b = await memBroker();
    await b.createTopic('orders', { partitions: 2 });
    const before = Date.now();
    const r = await b.publish('orders', { key: 'k', type: 't.x', headers: { a: 'b' }, payload: { n: 1 } });
    await b.publish('orders', { payload: new Uint8Array([7, 8]), key: 'k' });
    const got: TopicMessage[] = [];
    const sub = await b.subscribe('orders', { from: 'earliest' }, (m) => void got.push(m));
    cleanups.push(() => sub.close());
    await waitFor(() => got.length === 2, 'two messages');
    expect(got[0]).toMatchObject({
      id: r.id,
      type: 't.x',
      key: 'k',
      headers: { a: 'b' },
      payload: { n: 1 },
      topic: 'orders',
      partition: r.partition,
      offset: 0,
      deliveryCount: 1,
    });
    expect(got[0].timestamp).toBeGreaterThanOrEqual(before);
    expect(got[1].payload).toEqual(new Uint8Array([7, 8]));
  });

  it('a disk broker keeps topics, messages and their order across close and reopen', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const b1 = await Broker.open({ dataDir: dir });
    await b1.createTopic('orders', { partitions: 2 });
    for (let i = 0; i < 20; i++) await b1.publish('orders', { key: `k${i % 3}`, payload: { i } });
    await b1.close();
    const b2 = await memBroker({ dataDir: dir });
    expect(await b2.describeTopic('orders')).toMatchObject({ partitions: 2 });
    const got: number[] = [];
    const sub = await b2.subscribe(
      'orders',
      { from: 'earliest' },
      (m) => void got.push((m.payload as { i: number }).i),
    );
    cleanups.push(() => sub.close());
    await waitFor(() => got.length === 20, '20 messages');
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('a dedupId starting with U+FEFF is still a repeat after a reopen (the rebuilt window reads it the same)', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const b1 = await Broker.open({ dataDir: dir });
    await b1.createTopic('d', { dedupWindowMs: 60_000 });
    const first = await b1.publish('d', { dedupId: '\ufeffd', payload: 1 });
    await b1.close();
    const b2 = await memBroker({ dataDir: dir });
    const again = await b2.publish('d', { dedupId: '\ufeffd', payload: 1 });
    expect(again).toMatchObject({ id: first.id, duplicate: true });
  });

  it('a dedupId whose window ended is stored again after a reopen, though partitions are read back out of time order', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const clock = new ManualClock();
    const b1 = await Broker.open({ dataDir: dir, clock });
    await b1.createTopic('d', { partitions: 2, dedupWindowMs: 60_000 });
    await b1.publish('d', { partition: 1, dedupId: 'A', payload: 1 }); // t = 0: A's window ends at 60 s
    clock.advance(30_000);
    const b = await b1.publish('d', { partition: 0, dedupId: 'B', payload: 2 }); // t = 30 s
    await b1.close();
    clock.advance(10_000);
    const b2 = await memBroker({ dataDir: dir, clock }); // t = 40 s: partition 0 (B) is read back before 1 (A)
    expect(await b2.publish('d', { partition: 0, dedupId: 'B', payload: 2 })).toMatchObject({
      id: b.id,
      duplicate: true,
    });
    clock.advance(30_000); // t = 70 s
    const again = await b2.publish('d', { partition: 1, dedupId: 'A', payload: 1 });
    expect(again.duplicate).toBeUndefined();
    expect(again).toMatchObject({ partition: 1, offset: 1 });
  });

  it('a create racing the delete of its name fails with ALREADY_EXISTS until the files are gone, then starts clean (topics and queues)', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const b = await memBroker({ dataDir: dir });
    const create = { topic: () => b.createTopic('t'), queue: () => b.createQueue('t') };
    const remove = { topic: () => b.deleteTopic('t'), queue: () => b.deleteQueue('t') };
    for (const kind of ['topic', 'queue'] as const) {
      await create[kind]();
      await b.publish('t', [{ payload: 'old-0' }, { payload: 'old-1' }]);
      const deleted = remove[kind]();
      const refusals = new Set<string>();
      for (;;) {
        try {
          await create[kind]();
          break;
        } catch (err) {
          // Never a raw file-system error from the files being removed.
          expect(err).toMatchObject({ code: 'ALREADY_EXISTS' });
          refusals.add(String((err as Error).message).includes('being deleted') ? 'being deleted' : 'exists');
          await new Promise((r) => setImmediate(r));
        }
      }
      await deleted;
      expect(refusals.has('being deleted')).toBe(true);
      const stats = await b.stats('t');
      expect(stats.kind === 'topic' ? stats.partitions[0].endOffset : stats.kind === 'queue' ? stats.depth : -1).toBe(
        0,
      );
      await remove[kind]();
    }
  });

  it('a dedupId repeat of a publish in flight that then fails is published itself, as on queues', async () => {
    const b = await memBroker({ inMemory: true });
    await b.createTopic('d', { dedupWindowMs: 60_000, maxMessageBytes: 100 });
    const [original, repeat] = await Promise.allSettled([
      b.publish('d', { dedupId: 'k', payload: 'x'.repeat(500) }),
      b.publish('d', { dedupId: 'k', payload: 'fits' }),
    ]);
    expect(original.status === 'rejected' && (original.reason as { code: string }).code).toBe('MESSAGE_TOO_LARGE');
    expect(repeat.status === 'fulfilled' && repeat.value).toMatchObject({ partition: 0, offset: 0 });
    expect(repeat.status === 'fulfilled' && repeat.value.duplicate).toBeUndefined();
    const again = await b.publish('d', { dedupId: 'k', payload: 'fits' });
    expect(again).toMatchObject({ offset: 0, duplicate: true });
  });

  it('a batch refused for one message stores nothing, not even a dedupId repeat of it inside the batch', async () => {
    const b = await memBroker({ inMemory: true });
    await b.createTopic('d', { dedupWindowMs: 60_000, maxMessageBytes: 100 });
    const batch = [
      { dedupId: 'k', payload: 'x'.repeat(500) },
      { dedupId: 'k', payload: 'fits' },
    ];
    expect(await codeOf(b.publish('d', batch))).toBe('MESSAGE_TOO_LARGE');
    expect(((await b.stats('d')) as { messages: number }).messages).toBe(0);
    // Nothing is remembered of the refused batch: the dedupId is new.
    expect(await b.publish('d', { dedupId: 'k', payload: 'fits' })).toMatchObject({ offset: 0 });
    expect((await b.publish('d', { dedupId: 'k', payload: 'fits' })).duplicate).toBe(true);
  });

  it('a refused keyless batch does not move the sticky partitioner on', async () => {
    const b = await memBroker({ inMemory: true });
    await b.createTopic('spread', { partitions: 2, maxMessageBytes: 100 });
    const keyless = Array.from({ length: 99 }, (_, i) => ({ payload: i }));
    expect((await b.publish('spread', keyless)).every((r) => r.partition === 0)).toBe(true);
    // 99 of the run's 100 used; a refused batch of 50 takes none of it.
    expect(await codeOf(b.publish('spread', [...keyless.slice(0, 49), { payload: 'x'.repeat(500) }]))).toBe(
      'MESSAGE_TOO_LARGE',
    );
    expect((await b.publish('spread', { payload: 'next' })).partition).toBe(0);
  });

  it('rejects every bad input with its code and leaves what is stored untouched', async () => {
    const b = await memBroker({ inMemory: true, maxMessageBytes: 4096 });
    await b.createTopic('orders', { partitions: 2 });
    await b.createTopic('small', { maxMessageBytes: 100 });
    await b.publish('orders', [
      { key: 'a', payload: 1 },
      { key: 'b', payload: 2 },
    ]);
    const before = JSON.stringify([await b.listTopics(), await b.stats('orders'), await b.stats('small')]);

    expect(await codeOf(b.publish('nope', { payload: 1 }))).toBe('NOT_FOUND');
    expect(await codeOf(b.describeTopic('nope'))).toBe('NOT_FOUND');
    expect(await codeOf(b.deleteTopic('nope'))).toBe('NOT_FOUND');
    expect(await codeOf(b.stats('nope'))).toBe('NOT_FOUND');
    expect(await codeOf(b.subscribe('nope', {}, () => undefined))).toBe('NOT_FOUND');
    for (const bad of ['', 'has space', 'slash/x', '.', '..', 'x'.repeat(250), 'ümlaut']) {
      expect(await codeOf(b.createTopic(bad)), bad).toBe('INVALID_ARGUMENT');
    }
    for (const partitions of [0, -1, 1.5, LIMITS.maxPartitions + 1, '3' as unknown as number]) {
      expect(await codeOf(b.createTopic('new-one', { partitions })), String(partitions)).toBe('INVALID_ARGUMENT');
    }
    expect(await codeOf(b.createTopic('new-one', { retentionMs: -5 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(b.createTopic('orders', { partitions: 1 }))).toBe('ALREADY_EXISTS');
    expect(await codeOf(b.publish('orders', { payload: new Uint8Array(5000) }))).toBe('MESSAGE_TOO_LARGE'); // broker limit
    expect(await codeOf(b.publish('small', { payload: 'x'.repeat(200) }))).toBe('MESSAGE_TOO_LARGE'); // topic limit
    // One bad message rejects the whole batch before anything is appended.
    expect(await codeOf(b.publish('orders', [{ key: 'a', payload: 3 }, { payload: new Uint8Array(5000) }]))).toBe(
      'MESSAGE_TOO_LARGE',
    );
    expect(
      await codeOf(b.publish('orders', [{ key: 'a', payload: 3 }, { headers: { x: 1 as unknown as string } }])),
    ).toBe('INVALID_ARGUMENT');
    expect(await codeOf(b.publish('orders', [{ key: 'a', payload: 3 }, { partition: 2 }]))).toBe('INVALID_ARGUMENT');
    expect(
      await codeOf(
        b.publish(
          'orders',
          Array.from({ length: LIMITS.maxBatchMessages + 1 }, () => ({ payload: 1 })),
        ),
      ),
    ).toBe('LIMIT_EXCEEDED');
    expect(await codeOf(b.subscribe('orders', { from: 'middle' as 'latest' }, () => undefined))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await codeOf(b.subscribe('orders', { group: 'bad group' }, () => undefined))).toBe('INVALID_ARGUMENT');
    expect(
      await codeOf(b.subscribe('orders', { sessionTimeoutMs: 100, heartbeatIntervalMs: 200 }, () => undefined)),
    ).toBe('INVALID_ARGUMENT');

    expect(JSON.stringify([await b.listTopics(), await b.stats('orders'), await b.stats('small')])).toBe(before);
  });

  it('topics share one namespace: a second create of a name fails even when racing', async () => {
    const b = await memBroker();
    const results = await Promise.allSettled([b.createTopic('same'), b.createTopic('same', { partitions: 4 })]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(await codeOf(b.createTopic('same'))).toBe('ALREADY_EXISTS');
  });

  it('a deleted topic can be created again, empty', async () => {
    const b = await memBroker();
    await b.createTopic('t', { partitions: 1 });
    await b.publish('t', [{ payload: 1 }, { payload: 2 }]);
    await b.deleteTopic('t');
    await b.createTopic('t', { partitions: 1 });
    expect((await b.publish('t', { payload: 3 })).offset).toBe(0);
  });

  it('a closed broker rejects calls with CLOSED', async () => {
    const b = await Broker.open({ inMemory: true });
    await b.createTopic('t');
    await b.close();
    expect(await codeOf(b.publish('t', { payload: 1 }))).toBe('CLOSED');
    expect(await codeOf(b.createTopic('u'))).toBe('CLOSED');
  });

  it('Broker.open without dataDir or inMemory is INVALID_ARGUMENT', async () => {
    expect(await codeOf(Broker.open({}))).toBe('INVALID_ARGUMENT');
  });
});

describe('reserved names', () => {
  it('users cannot create or delete names starting with __wharf. (webhook delivery queues)', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      for (const create of [
        () => broker.createTopic('__wharf.t'),
        () => broker.createQueue('__wharf.webhook.1'),
        () => broker.createExchange('__wharf.x', { type: 'fanout' }),
        () => broker.deleteQueue('__wharf.webhook.1'),
      ]) {
        await expect(create()).rejects.toMatchObject({ code: 'FORBIDDEN' });
      }
      expect(await broker.listQueues()).toEqual([]);
    } finally {
      await broker.close();
    }
  });
});
