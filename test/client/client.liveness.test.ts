// A connection that goes silent without closing (a partition, a NAT that dropped its state, a server
// host that lost power) is noticed by the client within about the server's idleTimeoutMs: it is
// closed and the usual reconnect and resend take over, instead of requests waiting for the kernel's
// TCP retransmissions to give up (about a quarter of an hour on Linux).
import { expect, it } from 'vitest';
import { proxiedBroker } from './proxied-broker.js';

const IDLE_TIMEOUT_MS = 300;
const openProxied = proxiedBroker();

const start = (): ReturnType<typeof openProxied> =>
  openProxied({
    setup: async (b) => {
      await b.createQueue('q');
    },
    server: { idleTimeoutMs: IDLE_TIMEOUT_MS },
    client: { reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 20 },
  });

it('a publish made on a connection gone silent is stored once, over a new connection', async () => {
  const { broker, proxy, client } = await start();
  await client.publish('q', { payload: 'before' });
  proxy.silenceOn = 0;
  const startedMs = Date.now();
  await client.publish('q', { payload: 'during' });
  const tookMs = Date.now() - startedMs;
  expect(proxy.connections).toBe(2);
  // Noticed after a PING brought nothing back for idleTimeoutMs: within a few of them, not minutes.
  expect(tookMs).toBeLessThan(5 * IDLE_TIMEOUT_MS);
  const stored = await broker.receive('q', { max: 10 });
  expect(stored.map((m) => m.payload)).toEqual(['before', 'during']);
});

it('a quiet connection that answers its PINGs is kept: no reconnect over several idle timeouts', async () => {
  const { proxy, client } = await start();
  await client.publish('q', { payload: 'one' });
  await new Promise((resolve) => setTimeout(resolve, 4 * IDLE_TIMEOUT_MS));
  await client.publish('q', { payload: 'two' });
  expect(proxy.connections).toBe(1);
});
