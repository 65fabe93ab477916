// dedupId within a window on topics and queues: a repeat resolves with the original's result (on a
// topic: the same partition and offset), also after a restart and for concurrent repeats.
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
