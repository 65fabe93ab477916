// Offset commits fenced by a grant over the native protocol (version 8): a group member's topic
// deliveries carry their grant's epoch (DELIVER mask bit 7) only on connections that negotiated 8,
// a TRANSACTION's offset commits carry their grant, a client never sends a fenced commit to an
// older server (PROTOCOL_ERROR before anything is sent), and malformed offset entries change nothing.
import { describe, expect, it } from 'vitest';
import type { TopicMessage, TopicStats } from '../../src/broker/index.js';
import * as P from '../../src/protocol/index.js';
import { RawClient } from './raw-client.js';
import { servedBroker, withoutReceipts } from './served-broker.js';

const rig = servedBroker(async (b) => {
  await b.createQueue('out');
  await b.createTopic('t', { partitions: 1 });
  await b.publish('t', { payload: 'input' });
});
const { start, client, queueCounts } = rig;

/** The first delivery a raw client of `version` gets subscribing to topic t with `options`. */
async function firstDelivery(
  port: number,
  version: number,
  options: Record<string, unknown>,
): Promise<P.DecodedDelivery> {
  const c = await RawClient.open(port, true, version);
  c.send(P.encodeFrame(P.OP.SUBSCRIBE, 2, (w) => P.encodeSubscribe(w, { name: 't', options, credits: 10 })));
  await c.nextOp(P.OP.SUBSCRIBED);
  const f = await c.nextOp(P.OP.DELIVER);
  c.close();
  return P.decodeDeliver(new P.WireReader().reset(f.body)).deliveries[0];
}

async function committed(group: string): Promise<number | undefined> {
  const s = (await rig.broker!.stats('t')) as TopicStats;
  return s.groups[group]?.partitions[0].committed;
}

/** A remote subscription in `group` and the first message it was delivered. */
async function subscribed(url: string, group: string) {
  const c = await client(url);
  const seen: TopicMessage[] = [];
  const sub = await c.subscribe('t', { group, from: 'earliest' }, (m) => void seen.push(m));
  for (let i = 0; seen.length === 0; i++) {
    if (i > 400) throw new Error('no delivery');
    await new Promise((r) => setTimeout(r, 5));
  }
  return { c, sub, message: seen[0] };
}

describe('fenced offset commits over the wire', () => {
  it('DELIVER carries the grant’s epoch (mask bit 7) to a group member on version 8 only', async () => {
    const { port } = await start();
    const v8 = await firstDelivery(port, 8, { group: 'a', from: 'earliest' });
    expect(v8.assignmentEpoch).toBeGreaterThan(0);
    // A version 7 peer refuses reserved mask bits: it is never sent one, group member or not.
    const v7 = await firstDelivery(port, 7, { group: 'b', from: 'earliest' });
    expect(v7.assignmentEpoch).toBe(-1);
    expect([v7.partition, v7.offset]).toEqual([0, 0]);
    // A reader without a group has no grant.
    const reader = await firstDelivery(port, 8, { from: 'earliest' });
    expect(reader.assignmentEpoch).toBe(-1);
  });

  it('against a server of version 7 a fenced commit is refused with PROTOCOL_ERROR before sending; unfenced commits still work', async () => {
    const { url } = await start({ maxProtocolVersion: 7 });
    const { c, sub, message } = await subscribed(url, 'g');
    expect(message.grant).toBeUndefined(); // the server sent no epoch
    await expect(
      c.transaction(async (tx) => {
        await tx.publish('out', { payload: 'x' });
        await tx.commitOffset({
          topic: 't',
          group: 'g',
          partition: 0,
          offset: 1,
          grant: { memberId: sub.memberId, assignmentEpoch: 1 },
        });
      }),
    ).rejects.toMatchObject({
      code: 'PROTOCOL_ERROR',
      message: expect.stringMatching(/version 8.*upgrade the server/),
    });
    await expect(
      c.transaction(async (tx) => {
        await tx.commitOffset(message);
      }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/older than protocol version 8/),
    });
    expect(await queueCounts('out')).toEqual([0, 0]);
    await c.transaction(async (tx) => {
      await tx.publish('out', { payload: 'y' });
      await tx.commitOffset({ topic: 't', group: 'admin', partition: 0, offset: 1 });
    });
    expect(await queueCounts('out')).toEqual([1, 0]);
    expect(await committed('admin')).toBe(1);
    await sub.close();
  });

  it('behind a Wharf that hands out decoded messages, the grant goes through and fences as embedded', async () => {
    const { url } = await start({ wharf: withoutReceipts }); // no stored-record path: messages are decoded
    const { c, sub, message } = await subscribed(url, 'g');
    expect(message.grant).toMatchObject({ group: 'g', memberId: sub.memberId });
    await c.transaction(async (tx) => {
      await tx.publish('out', { payload: 'x' });
      await tx.commitOffset(message);
    });
    expect(await committed('g')).toBe(1);
    await sub.seek('earliest'); // the same member, granted again: the message's grant is over
    await expect(
      c.transaction(async (tx) => {
        await tx.publish('out', { payload: 'again' });
        await tx.commitOffset(message);
      }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await queueCounts('out')).toEqual([1, 0]);
    await sub.close();
  });

  it('malformed or stale offset entries of a version 8 TRANSACTION are refused; nothing is stored', async () => {
    const { port } = await start();
    const c = await RawClient.open(port, true, 8);
    const publishOut = (w: P.WireWriter): void => {
      w.u16(0).u16(1).str('out').u16(1);
      P.encodeMessageInput(w, { payload: 1 });
    };
    /** A TRANSACTION publishing to out and committing one offset entry, whose tail `rest` writes. */
    const frame = (id: number, rest: (w: P.WireWriter) => void): Buffer =>
      P.encodeFrame(P.OP.TRANSACTION, id, (w) => {
        publishOut(w);
        w.u16(1).str('t').str('g').u32(0).u64(1);
        rest(w);
      });
    await c.expectErrors([
      [frame(2, () => undefined), 'PROTOCOL_ERROR'], // the version 7 layout on a version 8 connection: no flags byte
      [frame(3, (w) => w.u8(0x80)), 'PROTOCOL_ERROR'], // a reserved flags bit
      [frame(4, (w) => w.u8(1).str('m')), 'PROTOCOL_ERROR'], // a grant announced and cut short
      [frame(5, (w) => w.u8(1).str('m').u32(1)), 'CONFLICT'], // a grant no member holds (nobody joined group g)
    ]);
    c.send(P.encodeFrame(P.OP.PING, 6));
    expect((await c.next())?.op).toBe(P.OP.PONG);
    c.close();
    expect(await queueCounts('out')).toEqual([0, 0]);
    expect(await committed('g')).toBeUndefined();
  });
});
