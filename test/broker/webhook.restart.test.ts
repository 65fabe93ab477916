// Pending webhook deliveries live in a durable queue: a broker restart does not lose them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { WebhookDispatcher } from '../../src/broker/webhooks/index.js';
import { HookServer } from './webhook-server.js';
import { waitFor } from '../patterns/wait-for.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('webhook durability', () => {
  it('deliveries pending while the endpoint is down are delivered after a broker restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wharf-webhook-restart-'));
    dirs.push(dataDir);
    const hook = await new HookServer().start();
    try {
      hook.behaviour = () => 503;
      let broker = await Broker.open({ dataDir });
      let webhooks = new WebhookDispatcher(broker.systemQueues());
      const options = { url: hook.url, secret: 'k', initialRetryDelayMs: 50, maxRetryDelayMs: 200 };
      const queue = await webhooks.ensureEndpoint('orders.1', options);
      for (let i = 0; i < 3; i++) await broker.publish(queue, { type: 'order.created', payload: { n: i } });
      await waitFor(() => hook.received.length >= 3, 10_000, 'failed attempts');
      await webhooks.close();
      await broker.close();

      hook.behaviour = () => 200;
      broker = await Broker.open({ dataDir });
      webhooks = new WebhookDispatcher(broker.systemQueues());
      await webhooks.ensureEndpoint('orders.1', options);
      await waitFor(() => hook.ok.length === 3, 15_000, 'all three delivered after restart');
      expect(hook.ok.map((r) => JSON.parse(r.body).payload.n).sort()).toEqual([0, 1, 2]);
      await webhooks.close();
      await broker.close();
    } finally {
      await hook.stop();
    }
  });
});
