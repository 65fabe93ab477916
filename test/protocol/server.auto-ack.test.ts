// ackMode 'auto' over the native protocol: the server acks a queue message, or commits a topic
// message's offset, durably once it has a credit for it and before it sends it (at-most-once). A
// message it holds for a credit when the flow ends was never taken: a queue's goes back at once,
// its delivery not counted, and a topic's offset is not committed past, so the group's next member
// gets it. Behind another Wharf (settling by promise) a held queue message is released too: its
// promise rejects with RELEASED, and that broker hands it back uncounted.
import { describe, expect, it } from 'vitest';
import { type QueueStats, type TopicStats } from '../../src/broker/index.js';
import * as P from '../../src/protocol/index.js';
import { sleep } from '../broker/topics-helpers.js';
import { until } from '../client/frame-proxy.js';
import { RawClient } from './raw-client.js';
import { servedBroker, withoutReceipts } from './served-broker.js';

// Each test creates what it needs on the served broker.
const rig = servedBroker(async () => undefined);

/** Opens a flow (CONSUME or SUBSCRIBE) with `credits` on a raw client of the current version; returns its id. */
async function openFlow(
  c: RawClient,
  op: number,
  name: string,
  options: Record<string, unknown>,
  credits: number,
): Promise<number> {
  c.send(P.encodeFrame(op, 2, (w) => P.encodeSubscribe(w, { name, options, credits })));
  return P.decodeSubscribed(new P.WireReader().reset((await c.nextOp(P.OP.SUBSCRIBED)).body)).subscriptionId;
}

/** Reads DELIVER frames until `count` deliveries have arrived. */
async function receiveDeliveries(c: RawClient, count: number): Promise<void> {
  for (let got = 0; got < count;) got += (await c.nextOp(P.OP.DELIVER)).body.readUInt16BE(4);
}

/** Ends the flow as a client can: UNSUBSCRIBE (answered OK), or by closing its connection. */
async function endFlow(c: RawClient, subscriptionId: number, how: 'UNSUBSCRIBE' | 'disconnect'): Promise<void> {
  if (how === 'UNSUBSCRIBE') {
    c.send(P.encodeFrame(P.OP.UNSUBSCRIBE, 3, (w) => P.encodeSubscriptionId(w, subscriptionId)));
    await c.nextOp(P.OP.OK);
  }
  c.close();
}

const queueStats = async (name: string): Promise<QueueStats> => (await rig.broker!.stats(name)) as QueueStats;
const committed = async (topic: string, group: string): Promise<number> =>
  ((await rig.broker!.stats(topic)) as TopicStats).groups[group].partitions[0].committed;

describe("ackMode 'auto' queue flows", () => {
  it.each(['UNSUBSCRIBE', 'disconnect'] as const)(
    'a message held for a credit when the flow ends (%s) goes back at once, uncounted; those sent stay acked',
    async (how) => {
      const { port } = await rig.start();
      const broker = rig.broker!;
      await broker.createQueue('q');
      await broker.publish(
        'q',
        Array.from({ length: 8 }, (_, i) => ({ payload: i })),
      );
      const c = await RawClient.open(port, true, P.PROTOCOL_VERSION);
      const subscriptionId = await openFlow(c, P.OP.CONSUME, 'q', { ackMode: 'auto' }, 2);
      await receiveDeliveries(c, 2);
      // Settling returns no credit: the server's handler slot frees, and the next message it takes
      // waits there for a credit that never comes.
      c.send(
        P.encodeFrame(P.OP.SETTLE, 0, (w) =>
          P.encodeSettle(w, { subscriptionId, deliveryId: 1, outcome: 'handled', error: '' }),
        ),
      );
      await sleep(100);
      await endFlow(c, subscriptionId, how);
      await until(async () => (await queueStats('q')).inFlight === 0, 'nothing in flight');
      const left = await broker.receive('q', { max: 10, waitMs: 0 });
      expect(left.map((m) => [m.payload, m.deliveryCount])).toEqual([2, 3, 4, 5, 6, 7].map((n) => [n, 1]));
    },
  );

  it('a delivery is acked before it is sent: unsettled or failed when the flow ends, it is not retried', async () => {
    const { port } = await rig.start();
    const broker = rig.broker!;
    // No retry backoff: a delivery wrongly nacked at the end would be back before the last receive.
    await broker.createQueue('q', { retry: { initialDelayMs: 0, jitter: 0 } });
    await broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    const c = await RawClient.open(port, true, P.PROTOCOL_VERSION);
    const subscriptionId = await openFlow(c, P.OP.CONSUME, 'q', { ackMode: 'auto' }, 2);
    await receiveDeliveries(c, 2);
    expect((await queueStats('q')).depth + (await queueStats('q')).inFlight).toBe(0);
    c.send(
      P.encodeFrame(P.OP.SETTLE, 0, (w) =>
        P.encodeSettle(w, { subscriptionId, deliveryId: 1, outcome: 'failed', error: 'x' }),
      ),
    );
    await sleep(50);
    c.close();
    await sleep(100);
    expect(await queueStats('q')).toMatchObject({ depth: 0, inFlight: 0, delayed: 0 });
    expect(await broker.receive('q', { max: 10, waitMs: 0 })).toEqual([]);
  });

  it('behind a Wharf that settles by promise, a held message is released, not acked: it comes back uncounted', async () => {
    const { port } = await rig.start({ wharf: withoutReceipts });
    const broker = rig.broker!;
    await broker.createQueue('q', { retry: { initialDelayMs: 10, jitter: 0 } });
    await broker.publish(
      'q',
      Array.from({ length: 4 }, (_, i) => ({ payload: i })),
    );
    const c = await RawClient.open(port, true, P.PROTOCOL_VERSION);
    const subscriptionId = await openFlow(c, P.OP.CONSUME, 'q', { ackMode: 'auto', prefetch: 2 }, 1);
    await receiveDeliveries(c, 1);
    c.send(
      P.encodeFrame(P.OP.SETTLE, 0, (w) =>
        P.encodeSettle(w, { subscriptionId, deliveryId: 1, outcome: 'handled', error: '' }),
      ),
    );
    await sleep(100); // message 1 is held for a credit, message 2 leased ahead
    c.close();
    await until(
      async () => (await queueStats('q')).inFlight === 0 && (await queueStats('q')).depth === 3,
      'three back in the queue',
    );
    const left = await broker.receive('q', { max: 10, waitMs: 0 });
    expect(left.map((m) => [m.payload, m.deliveryCount])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
    expect((await queueStats('q')).errorRate).toBe(0);
  });
});

describe("ackMode 'auto' topic flows", () => {
  async function groupFlow(credits: number): Promise<{ c: RawClient; subscriptionId: number }> {
    const { port } = await rig.start();
    const broker = rig.broker!;
    await broker.createTopic('t');
    await broker.publish(
      't',
      Array.from({ length: 10 }, (_, i) => ({ payload: i })),
    );
    const c = await RawClient.open(port, true, P.PROTOCOL_VERSION);
    const options = { group: 'g', from: 'earliest', ackMode: 'auto' };
    return { c, subscriptionId: await openFlow(c, P.OP.SUBSCRIBE, 't', options, credits) };
  }

  it('commits only what it has credits for, each grant as it comes', async () => {
    const { c, subscriptionId } = await groupFlow(3);
    await receiveDeliveries(c, 3);
    await sleep(50);
    expect(await committed('t', 'g')).toBe(3);
    c.send(P.encodeFrame(P.OP.CREDIT, 0, (w) => P.encodeCredit(w, subscriptionId, 2)));
    await receiveDeliveries(c, 2);
    expect(await committed('t', 'g')).toBe(5);
    c.close();
  });

  it.each(['UNSUBSCRIBE', 'disconnect'] as const)(
    'messages without a credit when the flow ends (%s) are not committed: the next member gets them',
    async (how) => {
      const { c, subscriptionId } = await groupFlow(3);
      await receiveDeliveries(c, 3);
      await endFlow(c, subscriptionId, how);
      await until(async () => ((await rig.broker!.stats('t')) as TopicStats).groups.g.members === 0, 'the member gone');
      expect(await committed('t', 'g')).toBe(3);
      const next: number[] = [];
      const sub = await rig.broker!.subscribe(
        't',
        { group: 'g', ackMode: 'auto' },
        (m) => void next.push(m.payload as number),
      );
      await until(async () => next.length === 7, 'seven delivered to the next member');
      await sub.close();
      expect(next).toEqual([3, 4, 5, 6, 7, 8, 9]);
    },
  );

  it('SEEK does not wait for credits: nothing waits for one, uncommitted', async () => {
    const { c, subscriptionId } = await groupFlow(2);
    await receiveDeliveries(c, 2);
    c.send(P.encodeFrame(P.OP.SEEK, 4, (w) => P.encodeSeek(w, subscriptionId, 'earliest')));
    expect((await c.nextOp(P.OP.OK)).correlationId).toBe(4);
    expect(await committed('t', 'g')).toBe(0);
    c.send(P.encodeFrame(P.OP.CREDIT, 0, (w) => P.encodeCredit(w, subscriptionId, 1)));
    await receiveDeliveries(c, 1); // offset 0 again
    c.close();
  });
});
