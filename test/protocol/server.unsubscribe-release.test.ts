// A queue flow's unsettled deliveries when it ends. An UNSUBSCRIBE from a connection of version 10
// or later releases them (not counted, back at once): that client reports every handler outcome
// before it unsubscribes, so what is still unsettled reached no handler. A connection that drops,
// or an UNSUBSCRIBE of version 9, nacks and counts them (the client may have crashed in its handler).
import { describe, expect, it } from 'vitest';
import { type QueueStats } from '../../src/broker/index.js';
import * as P from '../../src/protocol/index.js';
import { until } from '../client/frame-proxy.js';
import { RawClient } from './raw-client.js';
import { servedBroker } from './served-broker.js';

/**
 * Queue 'q' holding message 0, dead-lettered to 'q.dlq' after one delivery, served natively. A nack's
 * backoff of a minute: a message that came back counted would not be back in time.
 */
const rig = servedBroker(async (b) => {
  await b.createQueue('q.dlq');
  await b.createQueue('q', {
    maxDeliveries: 2,
    deadLetterQueue: 'q.dlq',
    retry: { initialDelayMs: 60_000, jitter: 0 },
  });
  await b.publish('q', [{ payload: 0 }]);
});

async function serve(): Promise<number> {
  return (await rig.start()).port;
}

/** CONSUME 'q' with one credit; its first delivery, never settled. */
async function consumeOne(c: RawClient): Promise<number> {
  c.send(
    P.encodeFrame(P.OP.CONSUME, 2, (w) => P.encodeSubscribe(w, { name: 'q', options: { prefetch: 1 }, credits: 1 })),
  );
  const id = P.decodeSubscribed(new P.WireReader().reset((await c.nextOp(P.OP.SUBSCRIBED)).body)).subscriptionId;
  const { deliveries } = P.decodeDeliver(new P.WireReader().reset((await c.nextOp(P.OP.DELIVER)).body));
  expect(deliveries.map((d) => [d.message.payload, d.deliveryCount])).toEqual([[0, 1]]);
  return id;
}

async function unsubscribe(c: RawClient, id: number): Promise<void> {
  c.send(P.encodeFrame(P.OP.UNSUBSCRIBE, 3, (w) => P.encodeSubscriptionId(w, id)));
  await c.nextOp(P.OP.OK);
}

const queueStats = async (): Promise<QueueStats> => (await rig.broker!.stats('q')) as QueueStats;

describe('a queue flow that ends with a delivery unsettled', () => {
  it('UNSUBSCRIBE at version 10: released, back at once with its deliveryCount unchanged, nothing counted', async () => {
    const c = await RawClient.open(await serve(), true, 10);
    await unsubscribe(c, await consumeOne(c));
    await until(async () => {
      const s = await queueStats();
      return s.inFlight === 0 && s.depth + s.delayed === 1;
    }, 'the delivery to end');
    const s = await queueStats();
    expect([s.nackRate, s.errorRate, s.delayed, s.deadLettered]).toEqual([0, 0, 0, 0]);
    const [again] = await rig.broker!.receive('q');
    expect([again.payload, again.deliveryCount]).toEqual([0, 1]);
    c.close();
  });

  it.each([
    ['the connection drops (version 10)', 10],
    ['UNSUBSCRIBE at version 9', 9],
  ] as const)('%s: nacked and counted, as documented', async (how, version) => {
    const c = await RawClient.open(await serve(), true, version);
    const id = await consumeOne(c);
    if (version === 9) await unsubscribe(c, id);
    c.close();
    await until(async () => (await queueStats()).delayed === 1, `the nack (${how})`);
    const s = await queueStats();
    expect(s.nackRate).toBeGreaterThan(0);
    expect(s.errorRate).toBeGreaterThan(0);
    expect(await rig.broker!.receive('q')).toEqual([]);
  });
});
