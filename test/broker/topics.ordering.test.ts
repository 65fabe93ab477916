// Per-partition order: the same key always lands on one partition (Kafka's placement) and is delivered
// in publish order; keyless messages spread over every partition.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { partitionForKey } from '../../src/broker/topics/partitioner.js';
import { waitFor } from './topics-helpers.js';

let broker: Broker | null = null;
afterEach(async () => {
  await broker?.close();
  broker = null;
});

describe('topics: partitioning and order', () => {
  it('a key lands on the partition Kafka would choose, and its messages are delivered in order', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('orders', { partitions: 5 });
    const keys = Array.from({ length: 12 }, (_, i) => `customer-${i}`);
    for (let round = 0; round < 30; round++) {
      const results = await broker.publish(
        'orders',
        keys.map((key) => ({ key, payload: { key, round } })),
      );
      results.forEach((r, i) => expect(r.partition).toBe(partitionForKey(Buffer.from(keys[i]), 5)));
    }
    const seen = new Map<string, number[]>();
    const lastOffset = new Map<number, number>();
    const sub = await broker.subscribe('orders', { group: 'g', from: 'earliest' }, (m) => {
      const { key, round } = m.payload as { key: string; round: number };
      expect(m.partition).toBe(partitionForKey(Buffer.from(key), 5));
      expect(m.offset).toBeGreaterThan(lastOffset.get(m.partition) ?? -1);
      lastOffset.set(m.partition, m.offset);
      seen.set(key, [...(seen.get(key) ?? []), round]);
    });
    await waitFor(() => [...seen.values()].reduce((n, r) => n + r.length, 0) === 360, 'all 360 messages');
    for (const key of keys) expect(seen.get(key)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    await sub.close();
  });

  it('an explicit partition overrides the key', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('orders', { partitions: 3 });
    expect((await broker.publish('orders', { key: 'x', partition: 2, payload: 1 })).partition).toBe(2);
    expect((await broker.publish('orders', { key: 'x', partition: 0, payload: 1 })).partition).toBe(0);
  });

  it('keyless messages spread evenly over the partitions', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('events', { partitions: 4 });
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 400; i++) counts[(await broker.publish('events', { payload: i })).partition!]++;
    expect(counts).toEqual([100, 100, 100, 100]);
    // A keyless batch stays together on one partition (one append); runs of them move on evenly.
    const batches = [];
    for (let i = 0; i < 40; i++)
      batches.push(
        await broker.publish(
          'events',
          Array.from({ length: 10 }, () => ({ payload: i })),
        ),
      );
    for (const b of batches) expect(new Set(b.map((r) => r.partition)).size).toBe(1);
    const perPartition = [0, 0, 0, 0];
    for (const b of batches) perPartition[b[0].partition!] += b.length;
    expect(perPartition).toEqual([100, 100, 100, 100]);
    const stats = await broker.stats('events');
    expect(stats.kind === 'topic' && stats.partitions.map((p) => p.endOffset)).toEqual([200, 200, 200, 200]);
  });

  it('a batch with mixed keys keeps each key in order on its partition', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('mix', { partitions: 3 });
    const msgs = Array.from({ length: 60 }, (_, i) => ({ key: `k${i % 4}`, payload: i }));
    const results = await broker.publish('mix', msgs);
    const byKey = new Map<string, number[]>();
    results.forEach((r, i) => {
      const k = msgs[i].key;
      const offsets = byKey.get(k) ?? [];
      if (offsets.length > 0) expect(r.offset).toBeGreaterThan(offsets[offsets.length - 1]);
      byKey.set(k, [...offsets, r.offset!]);
    });
    const partOffsets = results.map((r) => `${r.partition}:${r.offset}`);
    expect(new Set(partOffsets).size).toBe(60);
  });

  it('concurrent single publishes get offsets in call order (they may share one append)', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('c', { partitions: 2 });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => broker!.publish('c', { key: 'same', payload: i })),
    );
    const partition = results[0].partition;
    expect(results.map((r) => r.partition).every((p) => p === partition)).toBe(true);
    expect(results.map((r) => r.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    const got: number[] = [];
    const sub = await broker.subscribe('c', { from: 'earliest' }, (m) => void got.push(m.payload as number));
    await waitFor(() => got.length === 200, 'all 200');
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i));
    await sub.close();
  });
});
