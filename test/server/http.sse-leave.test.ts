// GET /topics/{name}/events when the client leaves: while the stream's subscribe is still running
// (a slow group join), deliveries that began meanwhile must not wait forever for the stream, or
// closing the subscription (which waits for them) hangs and keeps it and its fetcher alive. And a
// delivery the stream could not hand over because its client left is released, not failed: the
// topic's errorRate stays 0 and the group's next reader gets it.
import { get } from 'node:http';
import { expect, it } from 'vitest';
import {
  Broker,
  type Subscription,
  type SubscribeOptions,
  type TopicHandler,
  type TopicStats,
} from '../../src/broker/index.js';
import { buildHttpApp } from '../../src/server/http/app.js';
import type { HttpBroker } from '../../src/server/http/broker-port.js';
import { until } from '../client/frame-proxy.js';

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
    expect(((await broker.stats('t')) as TopicStats).errorRate).toBe(0);
  } finally {
    await http.app.close();
    await broker.close();
  }
});

it('a client that leaves while a delivery waits for its socket to drain: not counted in errorRate, not committed', async () => {
  const broker = await Broker.open({ inMemory: true });
  const COUNT = 24;
  await broker.createTopic('big', { partitions: 1 });
  // About 21 MiB of events: more than the socket buffers of a client that reads nothing hold.
  const payload = 'x'.repeat(900_000);
  for (let i = 0; i < COUNT; i++) await broker.publish('big', { payload });
  // The handler the route passes, watched: which offsets it is running.
  const running = new Set<number>();
  const watched = Object.create(broker) as Broker;
  watched.subscribe = (name: string, options: SubscribeOptions, handler: TopicHandler): Promise<Subscription> =>
    broker.subscribe(name, options, async (m) => {
      running.add(m.offset);
      try {
        await handler(m);
      } finally {
        running.delete(m.offset);
      }
    });
  const http = await buildHttpApp(watched as unknown as HttpBroker, { maxBodyBytes: 1 << 20 });
  try {
    await http.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (http.app.server.address() as { port: number }).port;
    const req = get(`http://127.0.0.1:${port}/topics/big/events?group=g&from=earliest`, (res) => res.pause());
    req.on('error', () => undefined);
    // Stuck: the same delivery still waits for the socket a while later (a drain would end it).
    let stuck = -1;
    await until(async () => {
      const [offset] = [...running];
      if (running.size !== 1 || offset !== stuck) {
        stuck = running.size === 1 ? offset : -1;
        await sleep(50);
        return false;
      }
      return true;
    }, 'a delivery waiting for the socket to drain');
    expect(stuck).toBeLessThan(COUNT - 1);
    req.destroy();
    await until(
      async () => ((await broker.stats('big')) as TopicStats).groups.g.members === 0,
      'the stream left the group',
    );
    const s = (await broker.stats('big')) as TopicStats;
    expect(s.errorRate).toBe(0);
    expect(s.groups.g.partitions[0].committed).toBe(stuck);
  } finally {
    await http.app.close();
    await broker.close();
  }
});
