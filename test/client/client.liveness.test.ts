// A connection that goes silent without closing (a partition, a NAT that dropped its state, a server
// host that lost power) is noticed by the client within about the server's idleTimeoutMs: it is
// closed and the usual reconnect and resend take over, instead of requests waiting for the kernel's
// TCP retransmissions to give up (about a quarter of an hour on Linux).
import { afterEach, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { startFrameProxy, type FrameProxy } from './frame-proxy.js';

const IDLE_TIMEOUT_MS = 300;
let broker: Broker | null = null;
let server: NativeServer | null = null;
let proxy: FrameProxy | null = null;
let client: RemoteWharf | null = null;
afterEach(async () => {
  await client?.close();
  await proxy?.close();
  await server?.close();
  await broker?.close();
  client = proxy = server = broker = null;
});

async function start(): Promise<{ broker: Broker; proxy: FrameProxy; client: RemoteWharf }> {
  broker = await Broker.open({ inMemory: true });
  await broker.createQueue('q');
  server = await startNativeServer(broker, { port: 0, idleTimeoutMs: IDLE_TIMEOUT_MS });
  proxy = await startFrameProxy(server.address().port);
  client = await connect(`wharf://127.0.0.1:${proxy.port}`, { reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 20 });
  return { broker, proxy, client };
}

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
