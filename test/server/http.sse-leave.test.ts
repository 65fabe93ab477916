// GET /topics/{name}/events when the client leaves while the stream's subscribe is still running
// (a slow group join): deliveries that began meanwhile must not wait forever for the stream, or
// closing the subscription (which waits for them) hangs and keeps it and its fetcher alive.
import { expect, it } from 'vitest';
import { Broker, type Subscription, type SubscribeOptions, type TopicHandler } from '../../src/broker/index.js';
import { buildHttpApp } from '../../src/server/http/app.js';
import type { HttpBroker } from '../../src/server/http/broker-port.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it('a client that leaves during a slow subscribe with deliveries already running: the subscription closes', async () => {
  const broker = await Broker.open({ inMemory: true });
  await broker.createTopic('t', { partitions: 1 });
  await broker.publish('t', [{ payload: 1 }, { payload: 2 }]);
  let closed = false;
  let delivered = 0;
  let releaseSubscribe!: () => void;
  const subscribeHeld = new Promise<void>((resolve) => (releaseSubscribe = resolve));
  // The broker as the route sees it, with a subscribe that returns only once the client has left,
  // after deliveries began.
  const slow = Object.create(broker) as Broker;
  slow.subscribe = async (name: string, options: SubscribeOptions, handler: TopicHandler): Promise<Subscription> => {
    const sub = await broker.subscribe(name, options, (m) => {
      delivered++;
      return handler(m);
    });
    await subscribeHeld;
    const close = sub.close.bind(sub);
    sub.close = async () => {
      await close();
      closed = true;
    };
    return sub;
  };
  const http = await buildHttpApp(slow as unknown as HttpBroker, { maxBodyBytes: 1 << 20, maxSseStreams: 1 });
  try {
    await http.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (http.app.server.address() as { port: number }).port;
    const leaving = new AbortController();
    const request = fetch(`http://127.0.0.1:${port}/topics/t/events?from=earliest`, { signal: leaving.signal }).catch(
      () => null,
    );
    for (let i = 0; i < 500 && delivered === 0; i++) await sleep(20);
    expect(delivered).toBeGreaterThan(0);
    leaving.abort();
    await request;
    await sleep(100); // the server sees the connection closed (if not, the stream's close ends it)
    releaseSubscribe();
    for (let i = 0; i < 250 && !closed; i++) await sleep(20);
    expect(closed).toBe(true);
  } finally {
    await http.app.close();
    await broker.close();
  }
});
