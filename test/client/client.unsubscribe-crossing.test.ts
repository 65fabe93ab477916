// A remote consumer's close() waits for its running handlers, reports their outcomes, stops
// listening for the flow, then sends UNSUBSCRIBE. A delivery the server sends in that gap (on a
// credit it already had) reaches no handler: on version 10 the server releases it at UNSUBSCRIBE
// (back uncounted), while the handled one, reported before the UNSUBSCRIBE, stays acked.
import { expect, it } from 'vitest';
import { type QueueStats } from '../../src/broker/index.js';
import * as P from '../../src/protocol/index.js';
import { until } from './frame-proxy.js';
import { proxiedBroker } from './proxied-broker.js';

const openProxied = proxiedBroker();

it('a delivery that crosses the UNSUBSCRIBE of close() is not counted or dead-lettered; the handled one stays acked', async () => {
  const { broker, proxy, client } = await openProxied({
    setup: async (b) => {
      await b.createQueue('dlq');
      await b.createQueue('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
    },
  });

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
  await until(async () => ((await broker.stats('q')) as QueueStats).inFlight === 2, "'b' sent to the client");
  const closing = consumer.close();
  release();
  await closing;
  await published;

  expect(handled).toEqual(['a']);
  await until(async () => ((await broker.stats('q')) as QueueStats).inFlight === 0, "'b' given back");
  const [q, dlq] = (await Promise.all([broker.stats('q'), broker.stats('dlq')])) as QueueStats[];
  expect([q.nackRate, q.errorRate, dlq.depth]).toEqual([0, 0, 0]);
  const left = await broker.receive('q', { max: 10, waitMs: 0 });
  expect(left.map((m) => [m.payload, m.deliveryCount])).toEqual([['b', 1]]);
});
