// dedupId within a window on topics and queues: a repeat resolves with the original's result (on a
// topic: the same partition and offset), also after a restart and for concurrent repeats. And an
// idempotent producer's (producerId, sequence) inside a transaction: stored once, as outside one.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/index.js';
import { Broker } from '../../src/broker/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-dedup-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function topicEnd(broker: Broker, topic: string): Promise<number> {
  const s = await broker.stats(topic);
  return s.kind === 'topic' ? s.partitions.reduce((n, p) => n + p.endOffset, 0) : -1;
}

describe('dedupId on topics and queues', () => {
  it('a topic repeat resolves with the original partition and offset; batches and concurrent repeats too', async () => {
    const broker = await Broker.open({ dataDir: dir });
    try {
      await broker.createTopic('t', { partitions: 3 });
      const first = await broker.publish('t', { key: 'k', dedupId: 'd1', payload: 1 });
      const again = await broker.publish('t', { key: 'other', dedupId: 'd1', payload: 2 });
      expect(again).toEqual({ ...first, duplicate: true });
      const [a, b] = await Promise.all([
        broker.publish('t', { dedupId: 'd2' }),
        broker.publish('t', { dedupId: 'd2' }),
      ]);
      expect(b).toMatchObject({ id: a.id, partition: a.partition, offset: a.offset, duplicate: true });
      const batch = await broker.publish('t', [{ dedupId: 'd3' }, { dedupId: 'd3' }, { payload: 'no dedup' }]);
      expect(batch[1]).toMatchObject({ id: batch[0].id, offset: batch[0].offset, duplicate: true });
      expect(await topicEnd(broker, 't')).toBe(4);
    } finally {
      await broker.close();
    }
  });

  it('the window survives a restart on topics and queues', async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createTopic('t', { partitions: 2 });
    await broker.createQueue('q');
    const t1 = await broker.publish('t', { dedupId: 'x', payload: 1 });
    const q1 = await broker.publish('q', { dedupId: 'x', payload: 1 });
    await broker.close();
    broker = await Broker.open({ dataDir: dir });
    try {
      expect(await broker.publish('t', { dedupId: 'x', payload: 1 })).toEqual({ ...t1, duplicate: true });
      expect(await broker.publish('q', { dedupId: 'x', payload: 1 })).toEqual({ id: q1.id, duplicate: true });
      expect(await topicEnd(broker, 't')).toBe(1);
      const s = await broker.stats('q');
      expect(s.kind === 'queue' && s.depth).toBe(1);
    } finally {
      await broker.close();
    }
  });

  it('a repeat after the window is stored again', async () => {
    const clock = new ManualClock();
    const broker = await Broker.open({ inMemory: true, clock });
    try {
      await broker.createTopic('t', { dedupWindowMs: 1000 });
      const a = await broker.publish('t', { dedupId: 'w' });
      clock.advance(500);
      expect((await broker.publish('t', { dedupId: 'w' })).duplicate).toBe(true);
      clock.advance(600);
      const c = await broker.publish('t', { dedupId: 'w' });
      expect(c.duplicate).toBeUndefined();
      expect(c.offset).toBe(a.offset! + 1);
    } finally {
      await broker.close();
    }
  });
});

async function types(broker: Broker, queue: string): Promise<string[]> {
  return (await broker.receive(queue, { max: 100 })).map((m) => m.type ?? '');
}

describe('idempotent producers in transactions', () => {
  it('a stored sequence published again in a transaction is not stored again; a new one is, once', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      await broker.createQueue('q');
      await broker.publish('q', { type: 'first', producerId: 'p', sequence: 1 });
      await broker.transaction(async (tx) => {
        await tx.publish('q', [
          { type: 'repeat', producerId: 'p', sequence: 1 },
          { type: 'second', producerId: 'p', sequence: 2 },
          { type: 'second-again', producerId: 'p', sequence: 2 },
        ]);
      });
      expect(await broker.publish('q', { type: 'late', producerId: 'p', sequence: 2 })).toMatchObject({
        duplicate: true,
      });
      expect(await types(broker, 'q')).toEqual(['first', 'second']);
    } finally {
      await broker.close();
    }
  });

  it('through an exchange: the sequence counts for the exchange, in and out of transactions', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      await broker.createQueue('q1');
      await broker.createQueue('q2');
      await broker.createExchange('f', { type: 'fanout' });
      await broker.bind('f', { queue: 'q1' });
      await broker.bind('f', { queue: 'q2' });
      await broker.publish('f', { type: 'a', producerId: 'p', sequence: 7 });
      await broker.transaction(async (tx) => {
        await tx.publish('f', { type: 'a-again', producerId: 'p', sequence: 7 });
        await tx.publish('f', { type: 'b', producerId: 'p', sequence: 8 });
      });
      expect(await broker.publish('f', { type: 'b-again', producerId: 'p', sequence: 8 })).toMatchObject({
        duplicate: true,
      });
      expect(await types(broker, 'q1')).toEqual(['a', 'b']);
      expect(await types(broker, 'q2')).toEqual(['a', 'b']);
    } finally {
      await broker.close();
    }
  });

  it('a repeat while a transaction is storing the sequence is not stored twice, whichever comes first', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      await broker.createQueue('q');
      // The plain publish first: it claims the sequence at once, so the commit leaves its copy out.
      const plainFirst = broker.publish('q', { type: 'plain', producerId: 'p', sequence: 3 });
      await broker.transaction(async (tx) => tx.publish('q', { type: 'tx', producerId: 'p', sequence: 3 }));
      expect((await plainFirst).duplicate).toBeUndefined();
      // The commit first: it has claimed the sequence once its callback resolved (before the next
      // macrotask), while its journal entry waits for the next turn.
      const [, plainAfter] = await Promise.all([
        broker.transaction(async (tx) => tx.publish('q', { type: 'tx', producerId: 'p', sequence: 4 })),
        new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
          broker.publish('q', { type: 'plain', producerId: 'p', sequence: 4 }),
        ),
      ]);
      expect(plainAfter.duplicate).toBe(true);
      expect(await types(broker, 'q')).toEqual(['plain', 'tx']);
    } finally {
      await broker.close();
    }
  });

  it('a failed commit releases its sequences: the same sequence is stored by the next publish', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      await broker.createQueue('q');
      await expect(
        broker.transaction(async (tx) => {
          await tx.publish('q', { type: 'lost', producerId: 'p', sequence: 1 });
          await tx.publish('missing', { type: 'x' });
        }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect((await broker.publish('q', { type: 'kept', producerId: 'p', sequence: 1 })).duplicate).toBeUndefined();
      expect(await types(broker, 'q')).toEqual(['kept']);
    } finally {
      await broker.close();
    }
  });

  it('a transaction repeating a sequence still in flight waits for it, and fails as it does: nothing reported stored is lost', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      await broker.createQueue('q');
      // A commit whose journal entry cannot be encoded fails after it claimed (p, 1) ...
      const first = broker.transaction(async (tx) =>
        tx.publish('q', { type: 'bad', producerId: 'p', sequence: 1, extra: 1n } as never),
      );
      // ... and the producer's retry, in flight meanwhile, fails with it instead of committing nothing.
      const retry = broker.transaction(async (tx) => tx.publish('q', { type: 'good', producerId: 'p', sequence: 1 }));
      const [a, b] = await Promise.allSettled([first, retry]);
      expect(a.status).toBe('rejected');
      expect(b.status).toBe('rejected');
      expect(await broker.receive('q', { max: 10 })).toEqual([]);
      await broker.transaction(async (tx) => tx.publish('q', { type: 'good', producerId: 'p', sequence: 1 }));
      expect((await broker.receive('q', { max: 10 })).map((m) => m.type)).toEqual(['good']);

      // A plain publish refused by a full queue: its repeat in a transaction is refused too.
      await broker.createQueue('full', { maxLength: 1, overflow: 'reject' });
      await broker.publish('full', { type: 'filler' });
      const plain = broker.publish('full', { type: 'm', producerId: 'p2', sequence: 1 });
      const tx = broker.transaction(async (t) => t.publish('full', { type: 'm', producerId: 'p2', sequence: 1 }));
      const [rp, rt] = await Promise.allSettled([plain, tx]);
      expect(rp).toMatchObject({ status: 'rejected', reason: { code: 'QUEUE_FULL' } });
      expect(rt).toMatchObject({ status: 'rejected', reason: { code: 'QUEUE_FULL' } });
    } finally {
      await broker.close();
    }
  });
});
