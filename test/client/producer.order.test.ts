// The remote producer keeps each target's publishes in call order although it merges single
// publishes into shared frames, re-sent message by message when the server refuses one: while a
// shared frame is unanswered, later frames to its target are held back (single publishes gather
// in one frame), frames to other targets are not, and a shared frame whose answer is lost in a
// reconnect holds them until it is answered on the next connection.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker, type PublishResult } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { OP } from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { startFrameProxy, until, type FrameProxy } from './frame-proxy.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nextTick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('remote producer, publish order per target', () => {
  let broker: Broker;
  let server: NativeServer;
  let proxy: FrameProxy;
  let client: RemoteWharf | null = null;
  beforeEach(async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('t', { partitions: 1 });
    await broker.createTopic('other', { partitions: 1 });
    server = await startNativeServer(broker, { port: 0 });
    proxy = await startFrameProxy(server.address().port);
  });
  afterEach(async () => {
    await client?.close();
    client = null;
    await proxy.close();
    await server.close();
    await broker.close();
  });

  const open = async (options: { maxWaitingRequests?: number } = {}): Promise<RemoteWharf> => {
    client = await connect(`wharf://127.0.0.1:${proxy.port}`, {
      reconnectInitialDelayMs: 10,
      reconnectMaxDelayMs: 20,
      connectTimeoutMs: 300,
      ...options,
    });
    return client;
  };
  const publishesSentOn = (connection: number): number =>
    (proxy.opsByConnection[connection] ?? []).filter((op) => op === OP.PUBLISH).length;
  const offsets = (results: PublishResult[]): Array<number | undefined> => results.map((r) => r.offset);

  it('while a shared frame is unanswered, later publishes to its target wait and go as one frame; another target does not wait', async () => {
    const c = await open();
    proxy.delayServerAfter = { from: 0, op: OP.PUBLISH, ms: 300 };
    const shared = [c.publish('t', { payload: 'a' }), c.publish('t', { payload: 'b' })];
    await nextTick();
    const later = [c.publish('t', { payload: 'c' })];
    await nextTick();
    later.push(c.publish('t', { payload: 'd' }));
    const elsewhere = c.publish('other', { payload: 'x' });
    await sleep(150); // the shared frame's answer is still held by the proxy
    expect(publishesSentOn(0)).toBe(2); // the shared frame to t, and the one to other
    expect(offsets(await Promise.all([...shared, ...later]))).toEqual([0, 1, 2, 3]);
    expect((await elsewhere).offset).toBe(0);
    expect(publishesSentOn(0)).toBe(3); // c and d in one frame
  });

  it('a shared frame whose answer is lost holds later frames back until it is sent again, refused and split', async () => {
    const c = await open();
    proxy.muteServerOn = 0;
    const refused = c.publish('t', { payload: 'a', partition: 7 }).catch((err: { code: string }) => err.code);
    const b = c.publish('t', { payload: 'b' });
    await nextTick();
    const later = c.publish('t', { payload: 'c' });
    await until(() => publishesSentOn(0) === 1, 'the shared frame sent');
    await sleep(100);
    expect(publishesSentOn(0)).toBe(1); // c waits for the shared frame's answer
    proxy.muteServerOn = -1;
    proxy.cutAll();
    expect(await refused).toBe('INVALID_ARGUMENT');
    expect(offsets([await b, await later])).toEqual([0, 1]);
  });

  it('while reconnecting, frames held back count towards maxWaitingRequests', async () => {
    const c = await open({ maxWaitingRequests: 3 });
    const before = proxy.connections;
    proxy.swallowFrom = before; // attempts from now on get no answer
    proxy.cutAll();
    await until(() => proxy.connections > before, 'a reconnect attempt');
    const shared = [c.publish('t', { payload: 'a' }), c.publish('t', { payload: 'b' })]; // waits for the connection
    await nextTick();
    const held = [c.publish('t', [{ payload: 'c' }]), c.publish('t', [{ payload: 'd' }])];
    await expect(c.publish('t', [{ payload: 'over' }])).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      details: { limit: 'maxWaitingRequests' },
    });
    proxy.swallowFrom = Infinity;
    const results = [...(await Promise.all(shared)), ...(await Promise.all(held)).flat()];
    expect(offsets(results)).toEqual([0, 1, 2, 3]);
    expect(((await broker.stats('t')) as { messages: number }).messages).toBe(4);
  });
});
