// A remote consumer's close() waits for its running handlers, reports their outcomes, stops
// listening for the flow, then sends UNSUBSCRIBE. A delivery the server sends in that gap (on a
// credit it already had) reaches no handler: on version 10 the server releases it at UNSUBSCRIBE
// (back uncounted), while the handled one, reported before the UNSUBSCRIBE, stays acked.
import { afterEach, expect, it } from 'vitest';
import { Broker, type QueueStats } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import * as P from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { startFrameProxy, until, type FrameProxy } from './frame-proxy.js';

let broker: Broker | null = null;
let server: NativeServer | null = null;
let proxy: FrameProxy | null = null;
let client: RemoteWharf | null = null;

afterEach(async () => {
  await client?.close();
  await proxy?.close();
  await server?.close();
  await broker?.close();
  [broker, server, proxy, client] = [null, null, null, null];
});

it('a delivery that crosses the UNSUBSCRIBE of close() is not counted or dead-lettered; the handled one stays acked', async () => {
  broker = await Broker.open({ inMemory: true });
  await broker.createQueue('dlq');
  await broker.createQueue('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
  server = await startNativeServer(broker, { port: 0 });
  proxy = await startFrameProxy(server.address().port);
  client = await connect(`wharf://127.0.0.1:${proxy.port}`);

  const handled: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const consumer = await client.consume('q', { concurrency: 1, prefetch: 2 }, async (m) => {
    handled.push(m.payload as string);
    if (m.payload === 'a') await gate;
  });
  await broker.publish('q', { payload: 'a' });
  await until(() => handled.length === 1, "'a' in its handler");

  // From the client's PUBLISH of 'b' on, what the server sends is held back: its DELIVER of 'b'
  // (on the spare credit) reaches the client only after close() has sent UNSUBSCRIBE.
  proxy.delayServerAfter = { from: 0, op: P.OP.PUBLISH, ms: 300 };
  const published = client.publish('q', { payload: 'b' });
  await until(async () => ((await broker!.stats('q')) as QueueStats).inFlight === 2, "'b' sent to the client");
  const closing = consumer.close();
  release();
  await closing;
  await published;

  expect(handled).toEqual(['a']);
  await until(async () => ((await broker!.stats('q')) as QueueStats).inFlight === 0, "'b' given back");
  const [q, dlq] = (await Promise.all([broker.stats('q'), broker.stats('dlq')])) as QueueStats[];
  expect([q.nackRate, q.errorRate, dlq.depth]).toEqual([0, 0, 0]);
  const left = await broker.receive('q', { max: 10, waitMs: 0 });
  expect(left.map((m) => [m.payload, m.deliveryCount])).toEqual([['b', 1]]);
});
