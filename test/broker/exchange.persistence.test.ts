// Exchanges and bindings survive a restart (catalog + binding journal), deletions too.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-exchange-persist-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exchange persistence', () => {
  it('exchanges, bindings (with filters and exchange hops) and alternates survive a restart', async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createQueue('q');
    await broker.createQueue('lost');
    await broker.createExchange('front', { type: 'fanout' });
    await broker.createExchange('events', { type: 'topic', alternate: 'lost' });
    await broker.bind('front', { exchange: 'events' });
    await broker.bind('events', { queue: 'q' }, { pattern: 'order.*', filter: { region: ['eu'] } });
    const gone = await broker.bind('events', { queue: 'q' }, { pattern: 'gone.#' });
    await broker.unbind('events', { queue: 'q' }, { pattern: 'gone.#' });
    const before = await broker.listBindings();
    await broker.close();

    broker = await Broker.open({ dataDir: dir });
    try {
      expect(await broker.listBindings()).toEqual(before);
      expect(before.map((b) => b.id)).not.toContain(gone.id);
      expect(await broker.describeExchange('events')).toMatchObject({ type: 'topic', alternate: 'lost', bindings: 1 });
      await broker.publish('front', { type: 'order.created', headers: { region: 'eu' } });
      await broker.publish('front', { type: 'order.created', headers: { region: 'us' } });
      expect((await broker.receive('q', { max: 10 })).map((m) => m.headers.region)).toEqual(['eu']);
      expect((await broker.receive('lost', { max: 10 })).map((m) => m.headers.region)).toEqual(['us']);
      // A new binding after the restart gets a fresh id.
      const b = await broker.bind('events', { queue: 'q' }, { pattern: 'new.*' });
      expect(before.map((x) => x.id)).not.toContain(b.id);
      expect(b.id).not.toBe(gone.id);
    } finally {
      await broker.close();
    }
  });

  it('a deleted exchange stays deleted, with its bindings and the bindings to it', async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createQueue('q');
    await broker.createExchange('src', { type: 'fanout' });
    await broker.createExchange('dst', { type: 'fanout' });
    await broker.bind('src', { exchange: 'dst' });
    await broker.bind('dst', { queue: 'q' });
    await broker.deleteExchange('dst');
    await broker.close();

    broker = await Broker.open({ dataDir: dir });
    try {
      expect((await broker.listExchanges()).map((e) => e.name)).toEqual(['src']);
      expect(await broker.listBindings()).toEqual([]);
      await broker.createExchange('dst', { type: 'fanout' });
      expect(await broker.listBindings('dst')).toEqual([]);
    } finally {
      await broker.close();
    }
  });
});
