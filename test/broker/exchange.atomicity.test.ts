// Atomic routing: a publish that resolves is in every matching queue and topic; one that fails
// (a full queue, a message too large for one target) is in none of them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';

let dir: string;
let broker: Broker;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-exchange-atomic-'));
  broker = await Broker.open({ dataDir: dir });
});
afterEach(async () => {
  await broker.close();
  await rm(dir, { recursive: true, force: true });
});

async function depth(queue: string): Promise<number> {
  const s = await broker.stats(queue);
  return s.kind === 'queue' ? s.depth : -1;
}

async function topicEnd(topic: string): Promise<number> {
  const s = await broker.stats(topic);
  return s.kind === 'topic' ? s.partitions.reduce((n, p) => n + p.endOffset, 0) : -1;
}

describe('atomic routing', () => {
  it('a full target queue (overflow reject) fails the publish and nothing is written anywhere', async () => {
    await broker.createQueue('a');
    await broker.createQueue('full', { maxLength: 1, overflow: 'reject' });
    await broker.createTopic('t', { partitions: 2 });
    await broker.createExchange('fan', { type: 'fanout' });
    for (const target of [{ queue: 'a' }, { queue: 'full' }, { topic: 't' }]) await broker.bind('fan', target);
    await broker.publish('fan', { type: 'first' });
    expect([await depth('a'), await depth('full'), await topicEnd('t')]).toEqual([1, 1, 1]);
    await expect(broker.publish('fan', { type: 'second' })).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await expect(broker.publish('fan', [{ type: 'b1' }, { type: 'b2' }])).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    expect([await depth('a'), await depth('full'), await topicEnd('t')]).toEqual([1, 1, 1]);
    const stats = await broker.stats('fan');
    expect(stats).toMatchObject({ published: 1, routed: 3 });
  });

  it('a message too large for one target fails the publish for all of them', async () => {
    await broker.createQueue('roomy');
    await broker.createTopic('small', { maxMessageBytes: 1024 });
    await broker.createExchange('fan', { type: 'fanout' });
    await broker.bind('fan', { queue: 'roomy' });
    await broker.bind('fan', { topic: 'small' });
    await expect(broker.publish('fan', { payload: 'x'.repeat(4096) })).rejects.toMatchObject({
      code: 'MESSAGE_TOO_LARGE',
    });
    expect([await depth('roomy'), await topicEnd('small')]).toEqual([0, 0]);
    const r = await broker.publish('fan', { payload: 'ok' });
    expect(r.routed).toBe(2);
    expect([await depth('roomy'), await topicEnd('small')]).toEqual([1, 1]);
  });

  it('a batch to several targets lands whole in each, in order', async () => {
    await broker.createQueue('q1');
    await broker.createQueue('q2');
    await broker.createExchange('fan', { type: 'fanout' });
    await broker.bind('fan', { queue: 'q1' });
    await broker.bind('fan', { queue: 'q2' });
    const results = await broker.publish('fan', [{ type: 'm1' }, { type: 'm2' }, { type: 'm3' }]);
    expect(results.map((r) => r.routed)).toEqual([2, 2, 2]);
    for (const q of ['q1', 'q2']) {
      const got = await broker.receive(q, { max: 10 });
      expect(got.map((m) => m.type)).toEqual(['m1', 'm2', 'm3']);
      expect(got.map((m) => m.id)).toEqual(results.map((r) => r.id));
    }
  });
});

describe('atomic routing under concurrency (publishes share journal entries and queue writes)', () => {
  it("concurrent fan-out publishes each land once in every queue, and each publisher's messages stay in order", async () => {
    await broker.createExchange('fan', { type: 'fanout' });
    for (const q of ['c1', 'c2', 'c3']) {
      await broker.createQueue(q);
      await broker.bind('fan', { queue: q });
    }
    const publishers = 16;
    const each = 8;
    const ids = (
      await Promise.all(
        Array.from({ length: publishers }, async (_, p) => {
          const out: string[] = [];
          for (let i = 0; i < each; i++) out.push((await broker.publish('fan', { type: 'm', payload: { p, i } })).id);
          return out;
        }),
      )
    ).flat();
    for (const q of ['c1', 'c2', 'c3']) {
      const got = await broker.receive(q, { max: 1000 });
      expect(got.map((m) => m.id).sort()).toEqual([...ids].sort());
      for (let p = 0; p < publishers; p++) {
        const mine = got.map((m) => m.payload as { p: number; i: number }).filter((x) => x.p === p);
        expect(mine.map((x) => x.i)).toEqual(Array.from({ length: each }, (_, i) => i));
      }
    }
  });

  it('a bounded queue applies its overflow policy per publish, not to a batch of concurrent ones', async () => {
    await broker.createQueue('dlq');
    await broker.createQueue('bounded', { maxLength: 3, overflow: 'dead-letter', deadLetterQueue: 'dlq' });
    await broker.createQueue('plain');
    await broker.createExchange('fan', { type: 'fanout' });
    await broker.bind('fan', { queue: 'bounded' });
    await broker.bind('fan', { queue: 'plain' });
    await Promise.all(Array.from({ length: 10 }, (_, i) => broker.publish('fan', { type: 'm', payload: i })));
    expect([await depth('bounded'), await depth('dlq'), await depth('plain')]).toEqual([3, 7, 10]);
  });

  it('a message JSON cannot hold fails only its own publish, not the others that share its journal entry', async () => {
    await broker.createQueue('q1');
    await broker.createQueue('q2');
    await broker.createExchange('fan', { type: 'fanout' });
    await broker.bind('fan', { queue: 'q1' });
    await broker.bind('fan', { queue: 'q2' });
    const [before, bad, after] = await Promise.allSettled([
      broker.publish('fan', { type: 'good-1' }),
      broker.publish('fan', { type: 'bad', extra: 1n } as never),
      broker.publish('fan', { type: 'good-2' }),
    ]);
    expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'INVALID_ARGUMENT' } });
    expect([before.status, after.status]).toEqual(['fulfilled', 'fulfilled']);
    for (const q of ['q1', 'q2'])
      expect((await broker.receive(q, { max: 10 })).map((m) => m.type)).toEqual(['good-1', 'good-2']);
  });
});
