// Exchanges route the same embedded and over the native protocol.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { factories, type Target } from './factories.js';

describe.each(factories)('exchanges contract (%s)', (_name, make) => {
  let t: Target;
  beforeEach(async () => {
    t = await make();
  });
  afterEach(async () => {
    await t.close();
  });

  it('a topic exchange routes by pattern to bound queues; unbind stops it', async () => {
    await t.wharf.createQueue('analytics');
    const info = await t.wharf.createExchange('events', { type: 'topic' });
    expect(info).toMatchObject({ name: 'events', kind: 'exchange', type: 'topic' });
    const binding = await t.wharf.bind('events', { queue: 'analytics' }, { pattern: 'order.*' });
    expect(binding).toMatchObject({ exchange: 'events', target: { queue: 'analytics' }, pattern: 'order.*' });
    expect((await t.wharf.listBindings('events')).map((b) => b.id)).toEqual([binding.id]);
    expect((await t.wharf.listExchanges()).map((e) => e.name)).toEqual(['events']);
    const routed = await t.wharf.publish('events', { type: 'order.created', payload: { n: 1 } });
    expect(routed.routed).toBe(1);
    await t.wharf.publish('events', { type: 'user.created', payload: { n: 2 } });
    const got = await t.wharf.receive('analytics', { max: 10 });
    expect(got.map((m) => m.payload)).toEqual([{ n: 1 }]);
    await t.wharf.unbind('events', { queue: 'analytics' }, { pattern: 'order.*' });
    expect(await t.wharf.listBindings('events')).toEqual([]);
    await expect(t.wharf.unbind('events', { queue: 'analytics' }, { pattern: 'order.*' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await t.wharf.deleteExchange('events');
    await expect(t.wharf.describeExchange('events')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it("stats of an exchange is typed and answered alike: kind 'exchange' with published, routed and unroutable", async () => {
    await t.wharf.createExchange('counted', { type: 'direct' });
    await t.wharf.createQueue('counted-q');
    await t.wharf.bind('counted', { queue: 'counted-q' }, { pattern: 'k' });
    await t.wharf.publish('counted', { routingKey: 'k', payload: 1 });
    await t.wharf.publish('counted', { routingKey: 'nobody', payload: 2 });
    // A publish that matches no binding resolves, counted as unroutable: routed 0, remote as embedded.
    expect((await t.wharf.publish('counted', { routingKey: 'nobody-else', payload: 3 })).routed).toBe(0);
    expect(
      (
        await t.wharf.publish('counted', [
          { routingKey: 'k', payload: 4 },
          { routingKey: 'x', payload: 5 },
        ])
      ).map((r) => r.routed),
    ).toEqual([1, 0]);
    const s = await t.wharf.stats('counted');
    if (s.kind !== 'exchange') throw new Error(`stats kind ${s.kind}, not exchange`);
    expect({ published: s.published, routed: s.routed, unroutable: s.unroutable }).toEqual({
      published: 5,
      routed: 2,
      unroutable: 3,
    });
  });

  it("a dedupId repeat through an exchange resolves with the original's id and duplicate, to one target or several, and is not counted again", async () => {
    await t.wharf.createQueue('q1');
    await t.wharf.createQueue('q2');
    await t.wharf.createExchange('one', { type: 'fanout' });
    await t.wharf.bind('one', { queue: 'q1' });
    await t.wharf.createExchange('two', { type: 'fanout' });
    await t.wharf.bind('two', { queue: 'q1' });
    await t.wharf.bind('two', { queue: 'q2' });

    const single = await t.wharf.publish('one', { type: 'a', dedupId: 'd1' });
    expect(await t.wharf.publish('one', { type: 'a', dedupId: 'd1' })).toEqual({
      id: single.id,
      routed: 1,
      duplicate: true,
    });
    const fanned = await t.wharf.publish('two', { type: 'b', dedupId: 'd2' });
    expect(await t.wharf.publish('two', { type: 'b', dedupId: 'd2' })).toEqual({
      id: fanned.id,
      routed: 2,
      duplicate: true,
    });
    // In a batch: a repeat of an earlier publish, a new message, and a repeat of that one.
    const batch = await t.wharf.publish('two', [
      { type: 'b', dedupId: 'd2' },
      { type: 'c', dedupId: 'd3' },
      { type: 'c', dedupId: 'd3' },
    ]);
    expect(batch).toEqual([
      { id: fanned.id, routed: 2, duplicate: true },
      { id: batch[1].id, routed: 2 },
      { id: batch[1].id, routed: 2, duplicate: true },
    ]);

    const s = await t.wharf.stats('two');
    if (s.kind !== 'exchange') throw new Error(`stats kind ${s.kind}, not exchange`);
    expect({ published: s.published, routed: s.routed }).toEqual({ published: 2, routed: 4 });
    const ids = async (queue: string): Promise<string[]> =>
      (await t.wharf.receive(queue, { max: 10 })).map((m) => m.id);
    expect(await ids('q1')).toEqual([single.id, fanned.id, batch[1].id]);
    expect(await ids('q2')).toEqual([fanned.id, batch[1].id]);
  });
});
