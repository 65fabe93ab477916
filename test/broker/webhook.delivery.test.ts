// Webhook delivery against a real local HTTP server: signed POSTs, retry with backoff after 500s and
// timeouts, dead-lettering after maxDeliveries, and isolation of a slow endpoint from a fast one.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker, type QueueStats } from '../../src/broker/index.js';
import { WebhookDispatcher, verifyWebhookSignature } from '../../src/broker/webhooks/index.js';
import { ManualClock } from '../../src/common/index.js';
import { HookServer } from './webhook-server.js';
import { waitFor } from '../patterns/wait-for.js';

let broker: Broker;
let webhooks: WebhookDispatcher;
const servers: HookServer[] = [];

beforeEach(async () => {
  broker = await Broker.open({ inMemory: true });
  webhooks = new WebhookDispatcher(broker.systemQueues());
});
afterEach(async () => {
  await webhooks.close();
  await broker.close();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function server(): Promise<HookServer> {
  const s = await new HookServer().start();
  servers.push(s);
  return s;
}

const queueStats = async (name: string) => (await broker.stats(name)) as QueueStats;
const fast = { initialRetryDelayMs: 20, maxRetryDelayMs: 100 };

describe('webhook delivery', () => {
  it('POSTs the message as JSON with id, type, timestamp headers and an HMAC-SHA256 signature over the exact body', async () => {
    const hook = await server();
    const queue = await webhooks.ensureEndpoint('events.1', { url: hook.url, secret: 's3cret', ...fast });
    expect(queue).toBe(webhooks.targetQueueFor('events.1'));
    await broker.publish(queue, {
      type: 'order.created',
      key: 'o-1',
      headers: { region: 'eu' },
      payload: { orderId: 'o-1', amount: 99.99 },
    });
    await waitFor(() => hook.ok.length === 1, 10_000, 'one delivery');
    const [req] = hook.received;
    expect(verifyWebhookSignature(req.body, 's3cret', req.headers['x-wharf-signature'] as string)).toBe(true);
    expect(verifyWebhookSignature(req.body, 'other', req.headers['x-wharf-signature'] as string)).toBe(false);
    expect(verifyWebhookSignature(req.body + ' ', 's3cret', req.headers['x-wharf-signature'] as string)).toBe(false);
    const body = JSON.parse(req.body);
    expect(body).toMatchObject({
      type: 'order.created',
      key: 'o-1',
      headers: { region: 'eu' },
      payload: { orderId: 'o-1', amount: 99.99 },
    });
    expect(req.headers['x-wharf-id']).toBe(body.id);
    expect(req.headers['x-wharf-type']).toBe('order.created');
    expect(Number(req.headers['x-wharf-timestamp'])).toBe(body.timestamp);
    expect(req.headers['content-type']).toBe('application/json');
    await waitFor(
      async () => (await queueStats(queue)).depth === 0 && (await queueStats(queue)).inFlight === 0,
      5_000,
      'acked',
    );
    await waitFor(() => webhooks.stats('events.1')?.delivered === 1, 5_000, 'delivery counted');
    expect(webhooks.stats('events.1')).toMatchObject({ delivered: 1, failed: 0, lastStatus: 200 });
  });

  it('retries after HTTP 500 and after a timeout, then delivers once the endpoint recovers', async () => {
    const hook = await server();
    hook.behaviour = (_req, attempt) => (attempt === 1 ? 500 : attempt === 2 ? 'hang' : 200);
    const queue = await webhooks.ensureEndpoint('events.2', { url: hook.url, secret: 'k', timeoutMs: 300, ...fast });
    await broker.publish(queue, { type: 't', payload: { n: 1 } });
    await waitFor(() => hook.ok.length === 1, 10_000, 'delivery after recovery');
    expect(hook.received.map((r) => r.headers['x-wharf-delivery-count'])).toEqual(['1', '2', '3']);
    // Body and signature are identical across attempts, so a receiver can dedupe on x-wharf-id.
    expect(new Set(hook.received.map((r) => r.body)).size).toBe(1);
    await waitFor(() => webhooks.stats('events.2')?.delivered === 1, 5_000, 'delivery counted');
    expect(webhooks.stats('events.2')).toMatchObject({ delivered: 1, failed: 2 });
    await waitFor(async () => (await queueStats(queue)).inFlight === 0, 5_000, 'acked');
  });

  it('dead-letters a message after maxDeliveries failed attempts', async () => {
    const hook = await server();
    hook.behaviour = () => 503;
    const queue = await webhooks.ensureEndpoint('events.3', { url: hook.url, secret: 'k', maxDeliveries: 3, ...fast });
    await broker.publish(queue, { type: 't', payload: 'doomed' });
    const dlq = webhooks.deadLetterQueueFor('events.3');
    await waitFor(async () => (await queueStats(dlq)).depth === 1, 10_000, 'dead-lettered');
    expect(hook.received.length).toBe(3);
    const [dead] = await broker.receive(dlq, { max: 1 });
    expect(dead.payload).toBe('doomed');
  });

  it('a slow endpoint does not delay a fast one', async () => {
    const slow = await server();
    const quick = await server();
    let release!: () => void;
    const released = new Promise<number>((r) => (release = () => r(200)));
    slow.behaviour = () => released; // holds its first request until the fast endpoint is done
    const slowQueue = await webhooks.ensureEndpoint('slow.1', {
      url: slow.url,
      secret: 'k',
      concurrency: 1,
      timeoutMs: 30_000,
    });
    const fastQueue = await webhooks.ensureEndpoint('fast.1', { url: quick.url, secret: 'k', concurrency: 1 });
    for (let i = 0; i < 5; i++) await broker.publish(slowQueue, { type: 't', payload: i });
    await waitFor(() => slow.received.length === 1, 10_000, 'the slow endpoint is busy');
    for (let i = 0; i < 5; i++) await broker.publish(fastQueue, { type: 't', payload: i });
    await waitFor(() => quick.ok.length === 5, 10_000, 'fast endpoint got all five');
    expect(slow.ok.length).toBe(0);
    expect(slow.received.length).toBe(1); // concurrency 1: the rest wait in the slow endpoint's own queue
    release();
    await waitFor(() => slow.ok.length === 5, 10_000, 'slow endpoint catches up');
  });

  it('limits each endpoint to its concurrency', async () => {
    const hook = await server();
    let inFlight = 0;
    let peak = 0;
    hook.behaviour = async () => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 50));
      inFlight--;
      return 200;
    };
    const queue = await webhooks.ensureEndpoint('conc.1', { url: hook.url, secret: 'k', concurrency: 2 });
    await broker.publish(
      queue,
      Array.from({ length: 8 }, (_, i) => ({ type: 't', payload: i })),
    );
    await waitFor(() => hook.ok.length === 8, 10_000, 'all delivered');
    expect(peak).toBe(2);
  });

  it('spaces POSTs to an endpoint by its ratePerSecond (token bucket, burst 1)', async () => {
    const hook = await server();
    const queue = await webhooks.ensureEndpoint('rate.1', {
      url: hook.url,
      secret: 'k',
      concurrency: 4,
      ratePerSecond: 20,
      burst: 1,
    });
    await broker.publish(
      queue,
      Array.from({ length: 5 }, (_, i) => ({ type: 't', payload: i })),
    );
    await waitFor(() => hook.ok.length === 5, 10_000, 'all delivered');
    // 5 POSTs at 20/s with no burst need 4 refill intervals of 50 ms (arrival times at the server jitter a little).
    expect(hook.received[4].at - hook.received[0].at).toBeGreaterThanOrEqual(150);
  });

  it('a delivery waiting for a rate token when its endpoint restarts is POSTed by the new pusher as its first attempt', async () => {
    const hook = await server();
    const limited = new WebhookDispatcher(broker.systemQueues(), new ManualClock()); // no refill: after the burst, deliveries wait
    const options = { url: hook.url, secret: 'k', concurrency: 4, ratePerSecond: 1, burst: 1, maxDeliveries: 1 };
    try {
      const queue = await limited.ensureEndpoint('restart.1', options);
      await broker.publish(queue, [{ type: 'a' }, { type: 'b' }, { type: 'c' }]);
      await waitFor(async () => hook.ok.length === 1 && (await queueStats(queue)).inFlight === 2, 5_000, 'two wait');
      await limited.ensureEndpoint('restart.1', { ...options, burst: 2 });
      expect((await queueStats(limited.deadLetterQueueFor('restart.1'))).depth).toBe(0);
      await waitFor(() => hook.ok.length === 3, 5_000, 'both POSTed after the restart');
      expect(hook.ok.slice(1).map((r) => r.headers['x-wharf-delivery-count'])).toEqual(['1', '1']);
    } finally {
      await limited.close();
    }
  });

  it('a delivery waiting for a rate token when its endpoint stops stays queued, uncounted and not dead-lettered', async () => {
    const hook = await server();
    const limited = new WebhookDispatcher(broker.systemQueues(), new ManualClock());
    const queue = await limited.ensureEndpoint('stop.1', {
      url: hook.url,
      secret: 'k',
      concurrency: 4,
      ratePerSecond: 1,
      burst: 1,
      maxDeliveries: 1,
    });
    await broker.publish(queue, [{ type: 'a' }, { type: 'b' }, { type: 'c' }]);
    await waitFor(async () => hook.ok.length === 1 && (await queueStats(queue)).inFlight === 2, 5_000, 'two wait');
    expect(limited.stats('stop.1')).toMatchObject({ delivered: 1, failed: 0 });
    await limited.close(); // as when the broker closes
    const q = await queueStats(queue);
    expect({ depth: q.depth, inFlight: q.inFlight }).toEqual({ depth: 2, inFlight: 0 });
    expect((await queueStats(limited.deadLetterQueueFor('stop.1'))).depth).toBe(0);
    const [next] = await broker.receive(queue, { max: 1 });
    expect(next.deliveryCount).toBe(1);
    expect(hook.received.length).toBe(1);
  });

  it('removeEndpoint stops delivery and deletes the binding queues; bad options are rejected', async () => {
    const hook = await server();
    await webhooks.ensureEndpoint('gone.1', { url: hook.url, secret: 'k' });
    await webhooks.removeEndpoint('gone.1');
    await expect(broker.describeQueue(webhooks.targetQueueFor('gone.1'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(webhooks.stats('gone.1')).toBeNull();
    await expect(webhooks.ensureEndpoint('bad.1', { url: 'ftp://127.0.0.1/x', secret: 'k' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(webhooks.ensureEndpoint('bad.2', { url: hook.url, secret: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
