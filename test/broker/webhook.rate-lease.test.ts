// A rate-limited endpoint whose deliveries wait for their token longer than their lease: each
// message is still POSTed once. A delivery whose lease ran out while it waited is someone else's
// by then (visible again, leased anew): it is not POSTed too.
import { afterEach, expect, it } from 'vitest';
import { WebhookDispatcher } from '../../src/broker/webhooks/index.js';
import { HookServer } from './webhook-server.js';
import { openTestBroker, settle, type TestBroker } from './queue-helpers.js';

let t: TestBroker;
let webhooks: WebhookDispatcher;
let hook: HookServer;
afterEach(async () => {
  await webhooks.close();
  await t.cleanup();
  await hook.stop();
});

it('POSTs each message once when the wait for a rate token outlasts the lease (every POST answered 200)', async () => {
  t = await openTestBroker();
  hook = await new HookServer().start();
  webhooks = new WebhookDispatcher(t.broker.systemQueues(), t.clock);
  // One POST per 100 s and 4 leased at once: the last waits about 300 s, its lease lasts 61 s.
  const queue = await webhooks.ensureEndpoint('slow.1', {
    url: hook.url,
    secret: 's',
    ratePerSecond: 0.01,
    timeoutMs: 1_000,
  });
  await t.broker.publish(
    queue,
    [1, 2, 3, 4].map((n) => ({ type: 't', payload: { n } })),
  );
  for (let i = 0; i < 60; i++) {
    t.clock.advance(10_000);
    await settle(5);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the real HTTP round trip
  }
  const ids = hook.received.map((r) => r.headers['x-wharf-id']);
  expect(new Set(ids).size).toBe(4);
  expect(hook.received).toHaveLength(4);
});
