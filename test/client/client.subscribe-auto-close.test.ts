// A remote ackMode 'auto' group subscription that closes or loses its connection: the server commits
// a message's offset only once it has a credit to send it, so the messages it could not send yet
// (close() grants no more credits; a cut connection ends the flow) are the group's next member's,
// never skipped.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker, type TopicStats } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { OP } from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { startFrameProxy, until, type FrameProxy } from './frame-proxy.js';
import { sleep } from '../broker/topics-helpers.js';

const sorted = (xs: number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);

describe("a remote ackMode 'auto' group subscription", () => {
  let broker: Broker;
  let server: NativeServer;
  let proxy: FrameProxy | null = null;
  let client: RemoteWharf | null = null;
  beforeEach(async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('t');
    server = await startNativeServer(broker, { port: 0 });
  });
  afterEach(async () => {
    await client?.close();
    await proxy?.close();
    await server.close();
    await broker.close();
    client = proxy = null;
  });

  it('closed while its handlers run, leaves what it was not sent to the next member', async () => {
    client = await connect(`wharf://127.0.0.1:${server.address().port}`, { subscribeCredits: 2 });
    await broker.publish(
      't',
      [0, 1, 2, 3, 4].map((n) => ({ payload: n })),
    );
    const first: number[] = [];
    const options = { group: 'g', from: 'earliest', ackMode: 'auto' } as const;
    const sub = await client.subscribe('t', options, async (m) => {
      first.push(m.payload as number);
      await sleep(100);
    });
    await until(() => first.length > 0, 'a first delivery');
    await sub.close();
    const second: number[] = [];
    const next = await broker.subscribe('t', options, (m) => void second.push(m.payload as number));
    await until(() => first.length + second.length >= 5, 'every message handled');
    await next.close();
    expect(first).toEqual([0, 1]);
    expect(second).toEqual([2, 3, 4]);
  });

  it('whose connection is cut, gets the messages the server had not sent again once it resubscribes', async () => {
    proxy = await startFrameProxy(server.address().port);
    client = await connect(`wharf://127.0.0.1:${proxy.port}`, {
      reconnectInitialDelayMs: 10,
      reconnectMaxDelayMs: 20,
      subscribeCredits: 2,
    });
    await broker.publish(
      't',
      Array.from({ length: 10 }, (_, i) => ({ payload: i })),
    );
    const handled: number[] = [];
    await client.subscribe('t', { group: 'g', from: 'earliest', ackMode: 'auto' }, async (m) => {
      handled.push(m.payload as number);
      await sleep(20);
    });
    await until(() => handled.length > 0, 'a first delivery');
    proxy.cutAll();
    await until(() => proxy!.opsByConnection.slice(1).some((ops) => ops.includes(OP.SUBSCRIBE)), 'resubscribed');
    await until(async () => ((await broker.stats('t')) as TopicStats).groups.g.lag === 0, 'lag 0');
    await until(() => sorted(handled).length === 10, 'every message handled');
    expect(sorted(handled)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
