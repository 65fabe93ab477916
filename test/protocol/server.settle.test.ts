// How a remote queue consumer's deliveries end when the client settles them, leaves or misbehaves:
// only deliveries the client was sent count as failed when it disconnects or unsubscribes (leases
// buffered on the server, and messages held for a credit, go back uncounted), and a SETTLE_BATCH run naming ids not yet sent
// settles nothing beyond what was sent.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker, type QueueStats, type TopicStats } from '../../src/broker/index.js';
import * as P from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { RawClient } from './raw-client.js';

let broker: Broker | null = null;
let server: NativeServer | null = null;

afterEach(async () => {
  await server?.close();
  await broker?.close();
  server = null;
  broker = null;
});

/** A queue of `count` messages (maxDeliveries 1, so one failed delivery dead-letters) and a raw consumer granted `credits`. */
async function consumeWithCredits(count: number, credits: number): Promise<{ c: RawClient; subscriptionId: number }> {
  broker = await Broker.open({ inMemory: true });
  await broker.createQueue('dlq');
  await broker.createQueue('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
  await broker.publish(
    'q',
    Array.from({ length: count }, (_, i) => ({ payload: i })),
  );
  const consumer = await rawConsumer(2, credits); // SETTLE_BATCH is a version 2 op
  await consumer.c.nextOp(P.OP.DELIVER);
  return consumer;
}

/** A server on the broker and a raw client of protocol `version` consuming queue 'q' with `credits`. */
async function rawConsumer(version: number, credits: number): Promise<{ c: RawClient; subscriptionId: number }> {
  server = await startNativeServer(broker!, { port: 0 });
  const c = await RawClient.open(server.address().port, true, version);
  c.send(P.encodeFrame(P.OP.CONSUME, 2, (w) => P.encodeSubscribe(w, { name: 'q', options: {}, credits })));
  const { subscriptionId } = P.decodeSubscribed(new P.WireReader().reset((await c.nextOp(P.OP.SUBSCRIBED)).body));
  return { c, subscriptionId };
}

async function until(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not reached');
}

const queueStats = async (name: string): Promise<QueueStats> => (await broker!.stats(name)) as QueueStats;
const depth = async (name: string): Promise<number> => (await queueStats(name)).depth;

describe('remote queue consumer settlement', () => {
  it('a disconnect fails only the deliveries sent; leases buffered on the server go back uncounted', async () => {
    const { c } = await consumeWithCredits(8, 2);
    await new Promise((r) => setTimeout(r, 50)); // the server leases ahead of the 2 sent
    c.close();
    await until(async () => (await queueStats('q')).inFlight === 0);
    expect(await depth('dlq')).toBe(2);
    expect(await depth('q')).toBe(6);
  });

  it('UNSUBSCRIBE fails only the deliveries sent', async () => {
    const { c, subscriptionId } = await consumeWithCredits(8, 2);
    await new Promise((r) => setTimeout(r, 50));
    c.send(P.encodeFrame(P.OP.UNSUBSCRIBE, 3, (w) => P.encodeSubscriptionId(w, subscriptionId)));
    await c.nextOp(P.OP.OK);
    await until(async () => (await queueStats('q')).inFlight === 0);
    expect(await depth('dlq')).toBe(2);
    expect(await depth('q')).toBe(6);
    c.close();
  });

  it('a message held for a credit when the flow ends goes back uncounted; only the one sent fails', async () => {
    const { c, subscriptionId } = await consumeWithCredits(8, 2);
    // Settle the first without granting a credit: the server's handler slot frees, and the next
    // message it takes waits for a credit the client never grants.
    c.send(
      P.encodeFrame(P.OP.SETTLE, 0, (w) =>
        P.encodeSettle(w, { subscriptionId, deliveryId: 1, outcome: 'handled', error: '' }),
      ),
    );
    await until(async () => (await queueStats('q')).inFlight >= 2); // delivery 2 sent, one held
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    await until(async () => (await queueStats('q')).inFlight === 0);
    expect(await depth('dlq')).toBe(1); // delivery 2, sent and unsettled
    expect(await depth('q')).toBe(6); // 8 - 1 acked - 1 dead-lettered: the held one is back, uncounted
  });

  it('a SETTLE_BATCH that releases a held message does not settle it under its new id', async () => {
    const { c, subscriptionId } = await consumeWithCredits(8, 2);
    c.send(
      P.encodeFrame(P.OP.SETTLE, 0, (w) =>
        P.encodeSettle(w, { subscriptionId, deliveryId: 1, outcome: 'handled', error: '' }),
      ),
    );
    await until(async () => (await queueStats('q')).inFlight >= 2); // delivery 2 sent, one held
    await new Promise((r) => setTimeout(r, 50));
    // One credit (the held message goes out as delivery 3) and a run naming 2 and 3: only 2 was sent.
    c.send(P.encodeFrame(P.OP.SETTLE_BATCH, 0, (w) => P.encodeSettleBatch(w, subscriptionId, 1, [2, 2])));
    await c.nextOp(P.OP.DELIVER);
    await new Promise((r) => setTimeout(r, 50));
    const q = await queueStats('q');
    expect(q.depth + q.inFlight).toBe(6); // 2 acked
    c.close();
  });

  it('a flow that ends with many leases buffered and one held gives them all back, counting only what was sent', async () => {
    const { c, subscriptionId } = await consumeWithCredits(6000, 2000); // prefetch 4000
    c.send(
      P.encodeFrame(P.OP.SETTLE, 0, (w) =>
        P.encodeSettle(w, { subscriptionId, deliveryId: 1, outcome: 'handled', error: '' }),
      ),
    );
    await until(async () => (await queueStats('q')).inFlight >= 3000);
    c.send(P.encodeFrame(P.OP.UNSUBSCRIBE, 3, (w) => P.encodeSubscriptionId(w, subscriptionId)));
    await c.nextOp(P.OP.OK);
    await until(async () => (await queueStats('q')).inFlight === 0);
    expect(await depth('dlq')).toBe(1999); // sent and unsettled (maxDeliveries 1)
    expect(await depth('q')).toBe(4000); // 6000 - 1 acked - 1999: the held and the buffered are back
    c.close();
  });

  it('deleting the queue does not wait for deliveries the client has not settled', async () => {
    const { c } = await consumeWithCredits(8, 2);
    const deleted = broker!.deleteQueue('q').then(() => 'deleted');
    const late = new Promise((r) => setTimeout(() => r('still waiting'), 2000));
    expect(await Promise.race([deleted, late])).toBe('deleted');
    c.close();
  });

  it('deleting the queue ends the flow: a version 3 client gets FLOW_ENDED NOT_FOUND after its last DELIVER, and the flow is gone', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    const { c, subscriptionId } = await rawConsumer(3, 1000);
    // Deliveries on their way when the queue goes: whatever DELIVER frames come, FLOW_ENDED is last.
    await broker.publish(
      'q',
      Array.from({ length: 200 }, (_, i) => ({ payload: i })),
    );
    void broker.deleteQueue('q');
    let frame = await c.next();
    while (frame !== null && frame.op === P.OP.DELIVER) frame = await c.next();
    expect(frame?.op).toBe(P.OP.FLOW_ENDED);
    const ended = P.decodeFlowEnded(new P.WireReader().reset(frame!.body));
    expect(ended.subscriptionId).toBe(subscriptionId);
    expect(ended.reason).toMatchObject({ code: 'NOT_FOUND' });
    expect(ended.reason.message).toContain('"q"');
    c.send(P.encodeFrame(P.OP.UNSUBSCRIBE, 3, (w) => P.encodeSubscriptionId(w, subscriptionId)));
    const refused = await c.next(); // nothing of the flow after FLOW_ENDED: the next frame answers the UNSUBSCRIBE
    expect(refused?.op).toBe(P.OP.ERROR);
    expect(c.error(refused!)).toMatchObject({ code: 'NOT_FOUND' });
    c.close();
  });

  it('deleting the queue ends the flow of a version 2 client too, without FLOW_ENDED (an op it does not know)', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    const { c, subscriptionId } = await rawConsumer(2, 1);
    await broker.deleteQueue('q');
    await new Promise((r) => setTimeout(r, 50));
    c.send(P.encodeFrame(P.OP.UNSUBSCRIBE, 3, (w) => P.encodeSubscriptionId(w, subscriptionId)));
    const next = await c.next(); // the first frame after the delete: no FLOW_ENDED before it
    expect(next?.op).toBe(P.OP.ERROR);
    expect(c.error(next!)).toMatchObject({ code: 'NOT_FOUND' });
    c.close();
  });

  it('SETTLE_BATCH runs far longer than what is pending settle exactly the deliveries they cover', async () => {
    const { c, subscriptionId } = await consumeWithCredits(5, 5);
    while ((await queueStats('q')).inFlight < 5) await new Promise((r) => setTimeout(r, 10));
    const other = await RawClient.open(server!.address().port, true, 2);
    // Overlapping runs from id 1 and id 3, each naming a million ids (5 are pending), repeated.
    const runs: number[] = [];
    for (let i = 0; i < 100; i++) runs.push(1, 1_000_000, 3, 1_000_000);
    c.send(P.encodeFrame(P.OP.SETTLE_BATCH, 0, (w) => P.encodeSettleBatch(w, subscriptionId, 0, runs)));
    other.send(P.encodeFrame(P.OP.PING, 9));
    await other.nextOp(P.OP.PONG);
    await until(async () => (await queueStats('q')).inFlight === 0);
    expect(await depth('q')).toBe(0); // the 5 deliveries were acked
    expect(await depth('dlq')).toBe(0);
    c.close();
    other.close();
  });

  it('a RECEIVE whose client left during its long poll gives the messages back at once and uncounted, not after their lease', async () => {
    broker = await Broker.open({ inMemory: true });
    // maxDeliveries 1: a counted hand-back would dead-letter them on the next delivery's nack.
    await broker.createQueue('q', { visibilityTimeoutMs: 600_000, maxDeliveries: 1 });
    server = await startNativeServer(broker, { port: 0 });
    const c = await RawClient.open(server.address().port, true, 2);
    c.send(P.encodeFrame(P.OP.RECEIVE, 5, (w) => P.encodeReceive(w, 'q', { max: 10, waitMs: 5_000 }, 2)));
    await new Promise((r) => setTimeout(r, 100)); // the long poll waits on the server
    c.close();
    await new Promise((r) => setTimeout(r, 100));
    await broker.publish('q', [{ payload: 1 }, { payload: 2 }]);
    await until(async () => (await queueStats('q')).inFlight === 0 && (await depth('q')) === 2);
    const again = await broker.receive('q', { max: 10 });
    expect(again.map((m) => m.payload).sort()).toEqual([1, 2]);
    expect(again.map((m) => m.deliveryCount)).toEqual([1, 1]);
  });

  it('a SETTLE_BATCH run past the ids sent settles only what was sent', async () => {
    const { c, subscriptionId } = await consumeWithCredits(3, 1);
    // Settles ids 1 and 2 (2 not sent yet) and grants a credit: the message then sent as id 2 stays unsettled.
    c.send(P.encodeFrame(P.OP.SETTLE_BATCH, 0, (w) => P.encodeSettleBatch(w, subscriptionId, 1, [1, 2])));
    await c.nextOp(P.OP.DELIVER);
    await new Promise((r) => setTimeout(r, 50));
    const q = await queueStats('q');
    expect(q.depth + q.inFlight).toBe(2);
    c.close();
  });
});

describe('a flow unsubscribed before its SUBSCRIBED', () => {
  /** Sends `op` (flow 1 on a new connection) and, in the same write, an UNSUBSCRIBE of flow 1; returns the answers by correlation id. */
  async function openAndUnsubscribe(
    op: number,
    name: string,
    options: Record<string, unknown>,
  ): Promise<Map<number, string>> {
    server = await startNativeServer(broker!, { port: 0 });
    const c = await RawClient.open(server.address().port, true, 4);
    c.send(
      Buffer.concat([
        P.encodeFrame(op, 2, (w) => P.encodeSubscribe(w, { name, options, credits: 10 })),
        P.encodeFrame(P.OP.UNSUBSCRIBE, 3, (w) => P.encodeSubscriptionId(w, 1)),
      ]),
    );
    const answers = new Map<number, string>();
    for (const f of [(await c.next())!, (await c.next())!])
      answers.set(f.correlationId, f.op === P.OP.ERROR ? c.error(f).code : P.opName(f.op));
    return answers;
  }

  it('a SUBSCRIBE still joining its group is answered CLOSED, and its member leaves the group', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('t');
    const answers = await openAndUnsubscribe(P.OP.SUBSCRIBE, 't', { group: 'g' });
    expect([answers.get(2), answers.get(3)]).toEqual(['CLOSED', 'OK']);
    await until(async () => ((await broker!.stats('t')) as TopicStats).groups.g?.members === 0);
  });

  it('a CONSUME still opening is answered CLOSED, and no consumer is left leasing the queue', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createQueue('dlq');
    await broker.createQueue('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
    await broker.publish('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    const answers = await openAndUnsubscribe(P.OP.CONSUME, 'q', {});
    expect([answers.get(2), answers.get(3)]).toEqual(['CLOSED', 'OK']);
    await new Promise((r) => setTimeout(r, 100));
    const q = await queueStats('q');
    expect([q.depth, q.inFlight, await depth('dlq')]).toEqual([3, 0, 0]);
  });
});
