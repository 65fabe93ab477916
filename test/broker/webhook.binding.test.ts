// End to end through an exchange: a url binding POSTs matching messages (signed), skips others, and a
// pending delivery survives a broker restart because the binding and its queue are durable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { verifyWebhookSignature } from '../../src/broker/webhooks/index.js';
import { HookServer } from './webhook-server.js';
import { waitFor } from '../patterns/wait-for.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('webhook bindings on an exchange', () => {
  it('POSTs only the messages the binding pattern matches, signed with its secret', async () => {
    const hook = await new HookServer().start();
    cleanups.push(() => hook.stop());
    const broker = await Broker.open({ inMemory: true });
    cleanups.push(() => broker.close());
    await broker.createExchange('events', { type: 'topic' });
    await broker.bind('events', { url: hook.url, secret: 'k1' }, { pattern: '*.created' });
    await broker.publish('events', { type: 'order.created', payload: { orderId: 'o-1' } });
    await broker.publish('events', { type: 'order.shipped', payload: { orderId: 'o-1' } });
    await broker.publish('events', { type: 'user.created', payload: { userId: 'u-1' } });
    await waitFor(() => hook.ok.length === 2, 10_000, 'two matching deliveries');
    await new Promise((r) => setTimeout(r, 100));
    expect(hook.received.map((r) => r.headers['x-wharf-type']).sort()).toEqual(['order.created', 'user.created']);
    for (const r of hook.received)
      expect(verifyWebhookSignature(r.body, 'k1', r.headers['x-wharf-signature'] as string)).toBe(true);
  });

  it('a delivery pending while the endpoint is down is made after the broker reopens', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wharf-webhook-binding-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const hook = await new HookServer().start();
    cleanups.push(() => hook.stop());
    hook.behaviour = () => 500;
    let broker = await Broker.open({ dataDir });
    await broker.createExchange('events', { type: 'fanout' });
    await broker.bind('events', { url: hook.url, secret: 'k2' });
    await broker.publish('events', { type: 'invoice.paid', payload: { n: 1 } });
    await waitFor(() => hook.received.length >= 1, 10_000, 'a failed attempt');
    await broker.close();

    hook.behaviour = () => 200;
    broker = await Broker.open({ dataDir });
    cleanups.push(() => broker.close());
    // The first retry waits for the default backoff (about 1 s).
    await waitFor(() => hook.ok.length === 1, 15_000, 'delivery after reopening');
    expect(JSON.parse(hook.ok[0].body).payload).toEqual({ n: 1 });
  });

  it('two identical url binds at once share one binding and leave no second webhook queue behind', async () => {
    const broker = await Broker.open({ inMemory: true });
    cleanups.push(() => broker.close());
    await broker.createExchange('events', { type: 'fanout' });
    const target = { url: 'http://127.0.0.1:9/hook', secret: 's' };
    const [a, b] = await Promise.all([broker.bind('events', target), broker.bind('events', target)]);
    expect(b.id).toBe(a.id);
    expect(await broker.listBindings('events')).toHaveLength(1);
    const webhookQueues = (await broker.systemQueues().listQueues())
      .map((q) => q.name)
      .filter((n) => n.startsWith('__wharf.webhook.'));
    const own = [`__wharf.webhook.${a.id}`, `__wharf.webhook.${a.id}.dlq`];
    expect(webhookQueues).toContain(own[0]);
    expect(webhookQueues.filter((n) => !own.includes(n))).toEqual([]);
  });
});
