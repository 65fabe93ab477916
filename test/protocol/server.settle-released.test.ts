// SETTLE outcome 2, released (protocol version 10): the client turned a delivery away because it is
// leaving. It is no handler failure: not counted in errorRate, not committed (topics) or acked
// (queues), and the message comes again with its deliveryCount unchanged. A topic flow that ends
// (UNSUBSCRIBE, or its connection closing) with deliveries unsettled releases them the same way,
// on any version. A connection of version 9 has no outcome 2: it is a malformed one-way frame.
import { describe, expect, it } from 'vitest';
import { type QueueStats, type TopicStats } from '../../src/broker/index.js';
import { WharfError } from '../../src/common/index.js';
import * as P from '../../src/protocol/index.js';
import { until } from '../client/frame-proxy.js';
import { RawClient } from './raw-client.js';
import { servedBroker } from './served-broker.js';

/** A broker with topic 't' (one partition) and queue 'q', each holding messages 0 and 1, served natively. */
const rig = servedBroker(async (b) => {
  await b.createTopic('t', { partitions: 1 });
  await b.publish('t', [{ payload: 0 }, { payload: 1 }]);
  // A nack's backoff of a minute: a released message that came back counted would not come back in time.
  await b.createQueue('q', { retry: { initialDelayMs: 60_000, jitter: 0 } });
  await b.publish('q', [{ payload: 0 }, { payload: 1 }]);
});

async function serve(): Promise<number> {
  return (await rig.start()).port;
}

async function openFlow(
  c: RawClient,
  op: number,
  name: string,
  options: Record<string, unknown>,
  credits = 10,
): Promise<number> {
  c.send(P.encodeFrame(op, 2, (w) => P.encodeSubscribe(w, { name, options, credits })));
  return P.decodeSubscribed(new P.WireReader().reset((await c.nextOp(P.OP.SUBSCRIBED)).body)).subscriptionId;
}

async function nextDelivery(c: RawClient): Promise<P.DecodedDelivery> {
  const { deliveries } = P.decodeDeliver(new P.WireReader().reset((await c.nextOp(P.OP.DELIVER)).body));
  expect(deliveries).toHaveLength(1);
  return deliveries[0];
}

function settle(c: RawClient, subscriptionId: number, deliveryId: number, outcome: P.SettleOutcome): void {
  c.send(P.encodeFrame(P.OP.SETTLE, 0, (w) => P.encodeSettle(w, { subscriptionId, deliveryId, outcome, error: '' })));
}

const topicStats = async (): Promise<TopicStats> => (await rig.broker!.stats('t')) as TopicStats;
const queueStats = async (): Promise<QueueStats> => (await rig.broker!.stats('q')) as QueueStats;

describe('SETTLE released (version 10)', () => {
  it('a topic delivery released comes again with the same deliveryCount; nothing is counted or committed past it', async () => {
    const c = await RawClient.open(await serve(), true, 10);
    const id = await openFlow(c, P.OP.SUBSCRIBE, 't', { group: 'g', from: 'earliest' });
    const first = await nextDelivery(c);
    expect([first.offset, first.deliveryCount]).toEqual([0, 1]);
    settle(c, id, first.deliveryId, 'released');
    const again = await nextDelivery(c);
    expect([again.offset, again.deliveryCount]).toEqual([0, 1]);
    expect((await topicStats()).groups.g.partitions[0].committed).toBe(0);
    settle(c, id, again.deliveryId, 'handled');
    expect((await nextDelivery(c)).offset).toBe(1);
    expect((await topicStats()).errorRate).toBe(0);
    c.close();
  });

  it('a queue delivery released is back at once, its delivery uncounted; nothing is nacked or counted', async () => {
    const c = await RawClient.open(await serve(), true, 10);
    const id = await openFlow(c, P.OP.CONSUME, 'q', { prefetch: 1 }, 1);
    const first = await nextDelivery(c);
    expect([first.message.payload, first.deliveryCount]).toEqual([0, 1]);
    settle(c, id, first.deliveryId, 'released');
    c.send(P.encodeFrame(P.OP.CREDIT, 0, (w) => P.encodeCredit(w, id, 1)));
    const again = await nextDelivery(c);
    expect([again.message.payload, again.deliveryCount]).toEqual([0, 1]);
    const s = await queueStats();
    expect([s.errorRate, s.nackRate]).toEqual([0, 0]);
    c.close();
  });

  it('on a connection of version 9 outcome 2 is malformed: ERROR PROTOCOL_ERROR, the connection closes, nothing is settled', async () => {
    const c = await RawClient.open(await serve(), true, 9);
    const id = await openFlow(c, P.OP.SUBSCRIBE, 't', { group: 'g', from: 'earliest' });
    const first = await nextDelivery(c);
    settle(c, id, first.deliveryId, 'released');
    let f = await c.next();
    while (f !== null && f.op !== P.OP.ERROR) f = await c.next();
    expect(c.error(f!)).toMatchObject({ code: 'PROTOCOL_ERROR' });
    expect(c.error(f!).message).toMatch(/outcome 2 \(released\) needs protocol version 10/);
    expect(await c.next()).toBeNull();
  });
});

describe('the client against a server of version 9 (no released outcome)', () => {
  it('settles a delivery its handler released as failed, counted as before, and the connection goes on', async () => {
    const client = await rig.client((await rig.start({ maxProtocolVersion: 9 })).url);
    const seen: Array<[number, number]> = [];
    const sub = await client.subscribe('t', { group: 'g', from: 'earliest' }, (m) => {
      seen.push([m.offset, m.deliveryCount]);
      if (seen.length === 1) throw new WharfError('RELEASED', 'leaving');
    });
    await until(() => seen.length === 3, 'both handled');
    await sub.close();
    expect(seen).toEqual([
      [0, 1],
      [0, 2],
      [1, 1],
    ]);
    expect((await topicStats()).errorRate).toBeGreaterThan(0);
  });
});

describe('a topic flow that ends with deliveries unsettled releases them', () => {
  it.each(['UNSUBSCRIBE', 'disconnect'] as const)(
    '(%s, version 2): not counted in errorRate, not committed; the group next member gets them',
    async (how) => {
      const c = await RawClient.open(await serve(), true, 2);
      const id = await openFlow(c, P.OP.SUBSCRIBE, 't', { group: 'g', from: 'earliest' });
      await nextDelivery(c); // offset 0, never settled
      if (how === 'UNSUBSCRIBE') {
        c.send(P.encodeFrame(P.OP.UNSUBSCRIBE, 3, (w) => P.encodeSubscriptionId(w, id)));
        await c.nextOp(P.OP.OK);
      }
      c.close();
      await until(async () => (await topicStats()).groups.g.members === 0, 'the member left');
      const s = await topicStats();
      expect([s.errorRate, s.groups.g.partitions[0].committed]).toEqual([0, 0]);
      const next: number[] = [];
      const sub = await rig.broker!.subscribe('t', { group: 'g' }, (m) => void next.push(m.offset));
      await until(() => next.length === 2, 'the next member got both');
      await sub.close();
      expect(next).toEqual([0, 1]);
    },
  );
});
