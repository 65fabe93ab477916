// Idempotent producers across a restart: the (producerId, sequence) stored in each record is read
// back on open, for topics, queues and exchanges, within the recovery window, and never confused
// between targets (a dead-lettered copy, a message routed through an exchange).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { RECOVERY_WINDOW_MS } from '../../src/broker/idempotence.js';
import { openTestBroker, qstats, type TestBroker } from './queue-helpers.js';

let t: TestBroker | null = null;
afterEach(async () => {
  await t?.cleanup();
  t = null;
});

async function topicEnd(broker: Broker, topic: string): Promise<number[]> {
  const s = await broker.stats(topic);
  if (s.kind !== 'topic') throw new Error(`${topic} is not a topic`);
  return s.partitions.map((p) => p.endOffset);
}

describe('idempotent producer state after a restart', () => {
  it('a topic retry after a crash resolves with the original partition and offset', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createTopic('orders', { partitions: 3, dedupWindowMs: 0 });
    const first = await t.broker.publish('orders', [
      { producerId: 'p', sequence: 10, key: 'a', payload: 1 },
      { producerId: 'p', sequence: 11, key: 'b', payload: 2 },
    ]);
    const broker = await t.crashRestart();
    const retry = await broker.publish('orders', [
      { producerId: 'p', sequence: 10, key: 'a', payload: 1 },
      { producerId: 'p', sequence: 11, key: 'b', payload: 2 },
      { producerId: 'p', sequence: 13, key: 'a', payload: 3 }, // a gap is fine
    ]);
    expect(retry[0]).toEqual({ ...first[0], duplicate: true, repeatedSequence: true });
    expect(retry[1]).toEqual({ ...first[1], duplicate: true, repeatedSequence: true });
    expect(retry[2].duplicate).toBeUndefined();
    expect((await topicEnd(broker, 'orders')).reduce((a, b) => a + b)).toBe(3);
  });

  it('a queue retry after a crash resolves with the original id, also when the message was consumed meanwhile', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createQueue('jobs', { dedupWindowMs: 0 });
    const first = await t.broker.publish('jobs', { producerId: 'p', sequence: 0, payload: 'x' });
    const delayed = await t.broker.publish('jobs', { producerId: 'p', sequence: 1, payload: 'y', delayMs: 60_000 });
    const [m] = await t.broker.receive('jobs');
    await m.ack();
    const broker = await t.crashRestart();
    expect(await broker.publish('jobs', { producerId: 'p', sequence: 0, payload: 'x' })).toEqual({
      ...first,
      duplicate: true,
      repeatedSequence: true,
    });
    expect(await broker.publish('jobs', { producerId: 'p', sequence: 1, payload: 'y', delayMs: 60_000 })).toEqual({
      ...delayed,
      duplicate: true,
      repeatedSequence: true,
    });
    expect(await qstats(t, 'jobs')).toMatchObject({ depth: 0, delayed: 1 });
  });

  it('an exchange retry after a restart is recognised for the exchange, not for the queue and topic it reached', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createQueue('audit.q', { dedupWindowMs: 0 });
    await t.broker.createTopic('audit.t', { dedupWindowMs: 0 });
    await t.broker.createExchange('events', { type: 'fanout' });
    await t.broker.bind('events', { queue: 'audit.q' });
    await t.broker.bind('events', { topic: 'audit.t' });
    const first = await t.broker.publish('events', { producerId: 'p', sequence: 0, payload: 'e' });
    expect(first.routed).toBe(2);
    const broker = await t.restart();
    const retry = await broker.publish('events', { producerId: 'p', sequence: 0, payload: 'e' });
    expect(retry).toEqual({ id: first.id, duplicate: true }); // known by its id alone: not how many targets it reached
    expect(await qstats(t, 'audit.q')).toMatchObject({ depth: 1 });
    expect(await topicEnd(broker, 'audit.t')).toEqual([1]);
    // The same producer's own sequence 0 to the queue and the topic are different publishes.
    expect((await broker.publish('audit.q', { producerId: 'p', sequence: 0, payload: 'q' })).duplicate).toBeUndefined();
    expect((await broker.publish('audit.t', { producerId: 'p', sequence: 0, payload: 't' })).duplicate).toBeUndefined();
    expect(await qstats(t, 'audit.q')).toMatchObject({ depth: 2 });
  });

  it('a dead-lettered copy does not stand for a publish to the dead-letter queue', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createQueue('work.dlq', { dedupWindowMs: 0 });
    await t.broker.createQueue('work', { deadLetterQueue: 'work.dlq', dedupWindowMs: 0 });
    await t.broker.publish('work', { producerId: 'p', sequence: 0, payload: 'poison' });
    const [m] = await t.broker.receive('work');
    await m.nack({ requeue: false });
    expect(await qstats(t, 'work.dlq')).toMatchObject({ depth: 1 });
    const broker = await t.restart();
    expect(
      (await broker.publish('work.dlq', { producerId: 'p', sequence: 0, payload: 'own' })).duplicate,
    ).toBeUndefined();
    expect(await qstats(t, 'work.dlq')).toMatchObject({ depth: 2 });
  });

  it('consumers never see the producer fields', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createQueue('q');
    await t.broker.publish('q', { producerId: 'p', sequence: 3, payload: 1, headers: { h: 'v' } });
    const [m] = await t.broker.receive('q');
    expect(m.headers).toEqual({ h: 'v' });
  });

  it('a retry is recognised up to RECOVERY_WINDOW_MS after its original, and stored again past it', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createTopic('t', { dedupWindowMs: 0 });
    await t.broker.publish('t', [{ producerId: 'p', sequence: 0, payload: 'old' }]);
    t.clock.advance(RECOVERY_WINDOW_MS - 1000);
    await t.broker.publish('t', { producerId: 'p', sequence: 1, payload: 'recent' });
    t.clock.advance(1001);
    const broker = await t.restart();
    expect((await broker.publish('t', { producerId: 'p', sequence: 1, payload: 'recent' })).duplicate).toBe(true);
    expect((await broker.publish('t', { producerId: 'p', sequence: 0, payload: 'old' })).duplicate).toBeUndefined();
    expect(await topicEnd(broker, 't')).toEqual([3]);
  });

  it('repeats inside one batch are stored once', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    const rs = await t.broker.publish('q', [
      { producerId: 'p', sequence: 1, payload: 'a' },
      { producerId: 'p', sequence: 1, payload: 'a' },
    ]);
    expect(rs[1]).toEqual({ ...rs[0], duplicate: true, repeatedSequence: true });
    expect(await qstats(t, 'q')).toMatchObject({ depth: 1 });
  });

  it('rejects a producerId or sequence it could not store faithfully', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    await expect(t.broker.publish('q', { producerId: 'a\u0000b', sequence: 1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(t.broker.publish('q', { producerId: '', sequence: 1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(t.broker.publish('q', { producerId: 'p', sequence: -1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(t.broker.publish('q', { producerId: 'p', sequence: 1.5 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    // A batch refused by its last message stores none of it, and claims nothing: its first message goes in later.
    await expect(
      t.broker.publish('q', [
        { producerId: 'p', sequence: 2 },
        { producerId: 'p', sequence: -2 },
      ]),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await qstats(t, 'q')).toMatchObject({ depth: 0 });
    expect((await t.broker.publish('q', { producerId: 'p', sequence: 2 })).duplicate).toBeUndefined();
    expect(await qstats(t, 'q')).toMatchObject({ depth: 1 });
  });

  it('a repeat of a batch still being stored waits for it and resolves with its results', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    const batch = [0, 1, 2].map((sequence) => ({ producerId: 'p', sequence, payload: sequence }));
    const [first, again] = await Promise.all([
      t.broker.publish('q', batch),
      t.broker.publish('q', [batch[2], batch[0]]),
    ]);
    expect(again).toEqual([
      { ...first[2], duplicate: true, repeatedSequence: true },
      { ...first[0], duplicate: true, repeatedSequence: true },
    ]);
    expect(await qstats(t, 'q')).toMatchObject({ depth: 3 });
  });

  it('a data directory from before keeps opening: its old idempotence journal is deleted', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createTopic('t');
    await t.broker.close();
    writeFileSync(join(t.dir!, 'idempotence'), 'WJNL\u0001\u0000\u0000\u0000 not a journal any more');
    const broker = await t.restart();
    expect(existsSync(join(t.dir!, 'idempotence'))).toBe(false);
    expect((await broker.publish('t', { producerId: 'p', sequence: 0 })).offset).toBe(0);
  });
});

describe('idempotent producer fields in a transaction through an exchange', () => {
  it('count for the exchange, not for the queue they reach, also after a restart', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createQueue('q'); // the default dedup window makes the intent's roll-forward after the crash store nothing twice
    await t.broker.createExchange('fan', { type: 'fanout' });
    await t.broker.bind('fan', { queue: 'q' });
    await t.broker.transaction(async (tx) => {
      await tx.publish('fan', { producerId: 'p', sequence: 1, payload: 'via-tx' });
    });
    const broker = await t.crashRestart();
    const direct = await broker.publish('q', { producerId: 'p', sequence: 1, payload: 'direct' });
    expect(direct.duplicate).toBeUndefined();
    expect((await qstats(t, 'q')).depth).toBe(2);
  });
});
