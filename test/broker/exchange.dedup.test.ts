// dedupId through an exchange: a repeat is a duplicate when every target it reaches held it already,
// and then resolves with the original's id; a target bound since the original stores it, and then
// the repeat is a new publish. The original's id comes from the targets, so a restart keeps it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-exchange-dedup-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function ids(broker: Broker, queue: string): Promise<string[]> {
  return (await broker.receive(queue, { max: 10 })).map((m) => m.id);
}

describe('dedupId through an exchange', () => {
  it('a repeat that a target bound since the original has not seen is stored there and is no duplicate; the next repeat is', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      await broker.createQueue('early');
      await broker.createQueue('late');
      await broker.createExchange('events', { type: 'fanout' });
      await broker.bind('events', { queue: 'early' });
      const original = await broker.publish('events', { type: 't', dedupId: 'd' });
      await broker.bind('events', { queue: 'late' });

      const reached = await broker.publish('events', { type: 't', dedupId: 'd' });
      expect(reached).toEqual({ id: reached.id, routed: 2 });
      expect(reached.id).not.toBe(original.id);
      // Both targets hold it now, each under the id of the publish that stored it there: the repeat
      // names the first target's.
      expect(await broker.publish('events', { type: 't', dedupId: 'd' })).toEqual({
        id: original.id,
        routed: 2,
        duplicate: true,
      });

      expect(await ids(broker, 'early')).toEqual([original.id]);
      expect(await ids(broker, 'late')).toEqual([reached.id]);
      expect(await broker.stats('events')).toMatchObject({ published: 2, routed: 3 });
    } finally {
      await broker.close();
    }
  });

  it("a repeat after a restart resolves with the original's id, to one target or several", async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createQueue('q1');
    await broker.createQueue('q2');
    await broker.createExchange('one', { type: 'fanout' });
    await broker.bind('one', { queue: 'q1' });
    await broker.createExchange('two', { type: 'fanout' });
    await broker.bind('two', { queue: 'q1' });
    await broker.bind('two', { queue: 'q2' });
    const single = await broker.publish('one', { type: 'a', dedupId: 'd1' });
    const fanned = await broker.publish('two', { type: 'b', dedupId: 'd2' });
    await broker.close();

    broker = await Broker.open({ dataDir: dir });
    try {
      expect(await broker.publish('one', { type: 'a', dedupId: 'd1' })).toEqual({
        id: single.id,
        routed: 1,
        duplicate: true,
      });
      expect(await broker.publish('two', { type: 'b', dedupId: 'd2' })).toEqual({
        id: fanned.id,
        routed: 2,
        duplicate: true,
      });
      expect(await broker.stats('two')).toMatchObject({ published: 0, routed: 0 });
      expect(await ids(broker, 'q1')).toEqual([single.id, fanned.id]);
      expect(await ids(broker, 'q2')).toEqual([fanned.id]);
    } finally {
      await broker.close();
    }
  });
});
