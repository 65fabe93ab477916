// Exchanges through the embedded Broker: every type end to end, filter policies, unroutable
// messages and alternates, exchange-to-exchange, webhook bindings, stats and errors.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { ExchangeStats } from '../../src/broker/index.js';
import { verifyWebhookSignature } from '../../src/broker/webhooks/index.js';

let broker: Broker;

beforeEach(async () => {
  broker = await Broker.open({ inMemory: true });
});
afterEach(async () => {
  await broker.close();
});

async function drain(queue: string): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const batch = await broker.receive(queue, { max: 100 });
    if (batch.length === 0) return out;
    for (const m of batch) {
      out.push(m.type);
      await m.ack();
    }
  }
}

async function queues(...names: string[]): Promise<void> {
  for (const n of names) await broker.createQueue(n);
}

describe('exchanges in the broker', () => {
  it('topic exchange: routes by message type with AMQP wildcards; routingKey overrides type', async () => {
    await queues('created', 'orders', 'all');
    await broker.createExchange('events', { type: 'topic' });
    await broker.bind('events', { queue: 'created' }, { pattern: '*.created' });
    await broker.bind('events', { queue: 'orders' }, { pattern: 'order.#' });
    await broker.bind('events', { queue: 'all' }, { pattern: '#' });
    const r = await broker.publish('events', { type: 'order.created', payload: 1 });
    expect(r.routed).toBe(3);
    await broker.publish('events', { type: 'user.created' });
    await broker.publish('events', { type: 'order.paid.eu' });
    await broker.publish('events', { type: 'x', routingKey: 'order' });
    expect(await drain('created')).toEqual(['order.created', 'user.created']);
    expect(await drain('orders')).toEqual(['order.created', 'order.paid.eu', 'x']);
    expect(await drain('all')).toHaveLength(4);
  });

  it('direct and fanout exchanges, to queues and topics', async () => {
    await queues('q1', 'q2');
    await broker.createTopic('audit', { partitions: 1 });
    await broker.createExchange('d', { type: 'direct' });
    await broker.bind('d', { queue: 'q1' }, { pattern: 'a' });
    await broker.createExchange('f', { type: 'fanout' });
    await broker.bind('f', { queue: 'q2' });
    await broker.bind('f', { topic: 'audit' });
    await broker.publish('d', { type: 'a' });
    await broker.publish('d', { type: 'b' });
    const [r] = await broker.publish('f', [{ type: 'z', key: 'k' }]);
    expect(r.routed).toBe(2);
    expect(await drain('q1')).toEqual(['a']);
    expect(await drain('q2')).toEqual(['z']);
    const t = await broker.stats('audit');
    expect(t.kind === 'topic' && t.partitions[0].endOffset).toBe(1);
  });

  it("headers exchange: match 'all' and 'any' on message headers", async () => {
    await queues('eu-gold', 'eu-or-gold');
    await broker.createExchange('by-region', { type: 'headers' });
    await broker.bind('by-region', { queue: 'eu-gold' }, { headers: { region: 'eu', tier: 'gold' }, match: 'all' });
    await broker.bind('by-region', { queue: 'eu-or-gold' }, { headers: { region: 'eu', tier: 'gold' }, match: 'any' });
    await broker.publish('by-region', { type: 'both', headers: { region: 'eu', tier: 'gold' } });
    await broker.publish('by-region', { type: 'eu', headers: { region: 'eu', tier: 'silver' } });
    await broker.publish('by-region', { type: 'none', headers: { region: 'us' } });
    expect(await drain('eu-gold')).toEqual(['both']);
    expect(await drain('eu-or-gold')).toEqual(['both', 'eu']);
  });

  it('filter policies narrow a binding beside its routing key', async () => {
    await queues('big-eu');
    await broker.createExchange('orders', { type: 'topic' });
    await broker.bind(
      'orders',
      { queue: 'big-eu' },
      { pattern: 'order.*', filter: { region: { prefix: 'eu-' }, amount: { numeric: ['>=', 100] } } },
    );
    await broker.publish('orders', { type: 'order.created', headers: { region: 'eu-west', amount: '150' } });
    await broker.publish('orders', { type: 'order.created', headers: { region: 'eu-west', amount: '50' } });
    await broker.publish('orders', { type: 'order.created', headers: { region: 'us-east', amount: '500' } });
    expect(await drain('big-eu')).toEqual(['order.created']);
  });

  it('counts unroutable messages and sends them to the alternate exchange or queue', async () => {
    await queues('main', 'lost');
    await broker.createExchange('ae', { type: 'fanout' });
    await broker.bind('ae', { queue: 'lost' });
    await broker.createExchange('x', { type: 'direct', alternate: 'ae' });
    await broker.bind('x', { queue: 'main' }, { pattern: 'known' });
    await broker.createExchange('plain', { type: 'direct' });
    await broker.createExchange('toQueue', { type: 'direct', alternate: 'lost' });
    await broker.publish('x', { type: 'known' });
    const r = await broker.publish('x', { type: 'unknown' });
    expect(r.routed).toBe(1);
    expect((await broker.publish('plain', { type: 'nowhere' })).routed).toBe(0);
    await broker.publish('toQueue', { type: 'q' });
    expect(await drain('main')).toEqual(['known']);
    expect(await drain('lost')).toEqual(['unknown', 'q']);
    const s = (await broker.stats('x')) as unknown as ExchangeStats;
    expect(s).toMatchObject({
      kind: 'exchange',
      type: 'direct',
      published: 2,
      routed: 1,
      unroutable: 1,
      alternated: 1,
    });
    expect(((await broker.stats('plain')) as unknown as ExchangeStats).unroutable).toBe(1);
  });

  it('exchange-to-exchange bindings route onwards and cycles are refused', async () => {
    await queues('sink');
    await broker.createExchange('a', { type: 'fanout' });
    await broker.createExchange('b', { type: 'topic' });
    await broker.bind('a', { exchange: 'b' });
    await broker.bind('b', { queue: 'sink' }, { pattern: 'keep.#' });
    await broker.publish('a', { type: 'keep.this' });
    await broker.publish('a', { type: 'drop.this' });
    expect(await drain('sink')).toEqual(['keep.this']);
    await expect(broker.bind('b', { exchange: 'a' }, { pattern: '#' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('refuses one of two concurrent binds that would close a cycle, before either is written', async () => {
    await broker.createExchange('x', { type: 'fanout' });
    await broker.createExchange('y', { type: 'fanout' });
    // Both start in one turn: each sees the other under way, not yet in the registry.
    const results = await Promise.allSettled([
      broker.bind('x', { exchange: 'y' }),
      broker.bind('y', { exchange: 'x' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(
      (await broker.listBindings()).map((b) => `${b.exchange}->${(b.target as { exchange: string }).exchange}`),
    ).toHaveLength(1);
  });

  it('lists, describes, unbinds and deletes; names are shared with queues and topics', async () => {
    await queues('q');
    await broker.createExchange('e', { type: 'topic' });
    await expect(broker.createExchange('q', { type: 'topic' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await expect(broker.createExchange('bad', { type: 'weird' as 'topic' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const b = await broker.bind('e', { queue: 'q' }, { pattern: 'a.*' });
    expect(await broker.bind('e', { queue: 'q' }, { pattern: 'a.*' })).toEqual(b);
    expect(await broker.listBindings('e')).toEqual([b]);
    expect(await broker.describeExchange('e')).toMatchObject({
      name: 'e',
      kind: 'exchange',
      type: 'topic',
      alternate: null,
      bindings: 1,
    });
    expect((await broker.listExchanges()).map((x) => x.name)).toEqual(['e']);
    await expect(broker.bind('e', { queue: 'q' }, {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(broker.bind('nope', { queue: 'q' }, { pattern: '#' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(broker.bind('e', { bogus: 'q' } as never, { pattern: '#' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await broker.unbind('e', { queue: 'q' }, { pattern: 'a.*' });
    await expect(broker.unbind('e', { queue: 'q' }, { pattern: 'a.*' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await broker.publish('e', { type: 'a.b' })).routed).toBe(0);
    await broker.deleteExchange('e');
    await expect(broker.publish('e', { type: 'a.b' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await broker.createExchange('e', { type: 'fanout' });
    expect(await broker.listBindings('e')).toEqual([]);
  });

  it('a url binding pushes matching messages as HMAC-signed POSTs', async () => {
    const received: Array<{ body: string; signature: string }> = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        received.push({ body, signature: String(req.headers['x-wharf-signature']) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      await broker.createExchange('events', { type: 'topic' });
      const b = await broker.bind('events', { url, secret: 'k' }, { pattern: '*.created' });
      expect(b.target).toEqual({ url, secret: 'k' });
      await broker.publish('events', { type: 'order.created', payload: { n: 1 } });
      await broker.publish('events', { type: 'order.deleted', payload: { n: 2 } });
      for (let i = 0; i < 200 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(received).toHaveLength(1);
      expect(JSON.parse(received[0].body)).toMatchObject({ type: 'order.created', payload: { n: 1 } });
      expect(verifyWebhookSignature(received[0].body, 'k', received[0].signature)).toBe(true);
      await broker.unbind('events', { url, secret: 'k' }, { pattern: '*.created' });
      expect(await broker.listBindings()).toEqual([]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
