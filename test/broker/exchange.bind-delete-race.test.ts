// A bind that a deleteExchange overtakes (of its exchange, or of the exchange it leads to) is not
// kept anywhere: it fails with NOT_FOUND, leaves no webhook queue or pusher, and neither the running
// broker nor a restart gives it to a namesake exchange created afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';

const hook = { url: 'http://127.0.0.1:9/hook', secret: 's' };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-exchange-bind-race-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Settles with the bind's error, or with what it resolved to; observed at once, so awaiting later is safe. */
function outcome<T>(p: Promise<T>): Promise<T | unknown> {
  return p.then(
    (v) => v,
    (err: unknown) => err,
  );
}

async function webhookQueues(broker: Broker): Promise<string[]> {
  return (await broker.systemQueues().listQueues()).map((q) => q.name).filter((n) => n.startsWith('__wharf.webhook.'));
}

describe('bind racing deleteExchange', () => {
  it('a url bind overtaken by deleteExchange fails with NOT_FOUND and leaves no webhook queue or dead-letter queue', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      await broker.createExchange('events', { type: 'fanout' });
      const bound = outcome(broker.bind('events', hook));
      await broker.deleteExchange('events');
      expect(await bound).toMatchObject({ code: 'NOT_FOUND' });
      expect(await webhookQueues(broker)).toEqual([]);
    } finally {
      await broker.close();
    }
  });

  it('the failed url bind does not come back on a namesake exchange, before or after a restart', async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createQueue('audit');
    await broker.createExchange('events', { type: 'fanout' });
    const bound = outcome(broker.bind('events', hook));
    await broker.deleteExchange('events');
    expect(await bound).toMatchObject({ code: 'NOT_FOUND' });
    await broker.createExchange('events', { type: 'fanout' });
    await broker.bind('events', { queue: 'audit' });
    const before = await broker.listBindings('events');
    await broker.close();

    broker = await Broker.open({ dataDir: dir });
    try {
      expect(await broker.listBindings('events')).toEqual(before);
      expect(before.map((b) => b.target)).toEqual([{ queue: 'audit' }]);
      expect(await webhookQueues(broker)).toEqual([]);
      // Only the queue is reached: nothing is queued for a POST.
      expect(await broker.publish('events', { type: 'order.created' })).toMatchObject({ routed: 1 });
    } finally {
      await broker.close();
    }
  });

  it('a bind to an exchange deleted meanwhile is not kept: the deleted one re-created gets no binding from before, before or after a restart', async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createQueue('q');
    await broker.createExchange('front', { type: 'fanout' });
    await broker.createExchange('back', { type: 'fanout' });
    const bound = outcome(broker.bind('front', { exchange: 'back' }));
    await broker.deleteExchange('back');
    expect(await bound).toMatchObject({ code: 'NOT_FOUND' });
    await broker.createExchange('back', { type: 'fanout' });
    await broker.bind('back', { queue: 'q' });
    expect(await broker.listBindings('front')).toEqual([]);
    expect(await broker.publish('front', { type: 't' })).toMatchObject({ routed: 0 });
    await broker.close();

    broker = await Broker.open({ dataDir: dir });
    try {
      expect(await broker.listBindings('front')).toEqual([]);
      expect(await broker.publish('front', { type: 't' })).toMatchObject({ routed: 0 });
    } finally {
      await broker.close();
    }
  });

  it('binds to a queue, a topic and an exchange overtaken by deleteExchange fail, and a namesake starts without them', async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createQueue('q');
    await broker.createTopic('t', { partitions: 1 });
    await broker.createExchange('other', { type: 'fanout' });
    await broker.createExchange('events', { type: 'fanout' });
    const bound = [{ queue: 'q' }, { topic: 't' }, { exchange: 'other' }, hook].map((target) =>
      outcome(broker.bind('events', target)),
    );
    await broker.deleteExchange('events');
    for (const b of bound) expect(await b).toMatchObject({ code: 'NOT_FOUND' });
    await broker.createExchange('events', { type: 'fanout' });
    expect(await broker.listBindings()).toEqual([]);
    await broker.close();

    broker = await Broker.open({ dataDir: dir });
    try {
      expect(await broker.listBindings()).toEqual([]);
      expect(await webhookQueues(broker)).toEqual([]);
    } finally {
      await broker.close();
    }
  });
});
