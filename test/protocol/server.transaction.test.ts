// TRANSACTION (protocol version 7) at the server: a server of an older version cannot run one and
// the client says so before sending anything; behind a Wharf that does not settle by receipt, the
// server acks the messages its connection received; malformed bodies change nothing.
import { describe, expect, it } from 'vitest';
import * as P from '../../src/protocol/index.js';
import { RawClient } from './raw-client.js';
import { servedBroker, withoutReceipts } from './served-broker.js';

const rig = servedBroker(async (b) => {
  await b.createQueue('in', { visibilityTimeoutMs: 60_000 });
  await b.createQueue('out');
  await b.createTopic('t', { partitions: 1 });
});
const { start, client, queueCounts } = rig;

describe('TRANSACTION', () => {
  it('against a server of version 6 the client refuses with PROTOCOL_ERROR, sends nothing, and keeps working', async () => {
    const { url } = await start({ maxProtocolVersion: 6 });
    const c = await client(url);
    await c.publish('in', { payload: 1 });
    const [m] = await c.receive('in');
    await expect(
      c.transaction(async (tx) => {
        await tx.ack(m);
        await tx.publish('out', { payload: 2 });
      }),
    ).rejects.toMatchObject({
      code: 'PROTOCOL_ERROR',
      message: expect.stringMatching(/version 7.*upgrade the server/),
    });
    expect(await queueCounts('in')).toEqual([0, 1]);
    expect(await queueCounts('out')).toEqual([0, 0]);
    await m.ack();
    expect(await queueCounts('in')).toEqual([0, 0]);
  });

  it('a raw TRANSACTION on a version 6 connection is PROTOCOL_ERROR', async () => {
    const { port } = await start();
    const raw = await RawClient.open(port, false);
    raw.send(
      P.encodeFrame(P.OP.HELLO, 1, (w) => P.encodeHello(w, { minVersion: 1, maxVersion: 6, clientName: 'old' })),
    );
    expect((await raw.next())?.op).toBe(P.OP.HELLO_OK);
    raw.send(
      P.encodeFrame(P.OP.TRANSACTION, 2, (w) =>
        P.encodeTransaction(
          w,
          { acks: [], publishes: [{ name: 'out', messages: [{ payload: 1 }] }], offsets: [] },
          P.TRANSACTION_VERSION,
        ),
      ),
    );
    const f = (await raw.next())!;
    expect([f.op, f.correlationId]).toEqual([P.OP.ERROR, 2]);
    expect(raw.error(f).code).toBe('PROTOCOL_ERROR');
    raw.close();
    expect(await queueCounts('out')).toEqual([0, 0]);
  });

  it('behind a Wharf that does not settle by receipt, it acks what this connection received, and refuses other receipts', async () => {
    const { url } = await start({ wharf: withoutReceipts });
    const c = await client(url);
    const other = await client(url);
    await c.publish('in', [{ payload: 1 }, { payload: 2 }]);
    const [mine] = await c.receive('in', { max: 1 });
    const [theirs] = await other.receive('in', { max: 1 });
    await expect(
      c.transaction(async (tx) => {
        await tx.ack(theirs);
        await tx.publish('out', { payload: 'x' });
      }),
    ).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    expect(await queueCounts('out')).toEqual([0, 0]);
    await c.transaction(async (tx) => {
      await tx.ack(mine);
      await tx.publish('out', { payload: 'y' });
      await tx.commitOffset({ topic: 't', group: 'g', partition: 0, offset: 0 });
    });
    expect(await queueCounts('in')).toEqual([0, 1]);
    expect(await queueCounts('out')).toEqual([1, 0]);
    await expect(mine.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' }); // forgotten by the connection
    await theirs.ack();
  });

  it('malformed or refused bodies are answered with an error; nothing is stored and the connection keeps working', async () => {
    const { port } = await start();
    const c = await RawClient.open(port, true, P.TRANSACTION_VERSION); // offset commits without a flags byte
    const msg = (w: P.WireWriter): void => P.encodeMessageInput(w, { payload: 1 });
    const cases: Array<[Buffer, string]> = [
      [P.encodeFrame(P.OP.TRANSACTION, 2, (w) => w.u16(1)), 'PROTOCOL_ERROR'], // one ack, no bytes for it
      [P.encodeFrame(P.OP.TRANSACTION, 3, (w) => w.u16(0).u16(1).str('missing').u16(0).u16(0)), 'NOT_FOUND'], // 0 messages, to a target that does not exist
      [P.encodeFrame(P.OP.TRANSACTION, 4, (w) => w.u16(0).u16(0).u16(0).u8(9)), 'PROTOCOL_ERROR'], // trailing bytes
      [P.encodeFrame(P.OP.TRANSACTION, 5, (w) => w.u16(0).u16(0xffff)), 'PROTOCOL_ERROR'], // a count the frame cannot back
      [
        P.encodeFrame(P.OP.TRANSACTION, 6, (w) => {
          w.u16(1).str('in').str('m').str('no-such-receipt');
          w.u16(1).str('out').u16(1);
          msg(w);
          w.u16(0);
        }),
        'RECEIPT_INVALID',
      ],
      [
        P.encodeFrame(P.OP.TRANSACTION, 7, (w) => {
          w.u16(0).u16(2).str('out').u16(1);
          msg(w);
          w.str('missing').u16(1);
          msg(w);
          w.u16(0);
        }),
        'NOT_FOUND',
      ],
      [
        P.encodeFrame(P.OP.TRANSACTION, 8, (w) => {
          w.u16(0).u16(1).str('out').u16(1);
          msg(w);
          w.u16(1).str('t').str('g').u32(5).u64(0); // partition 5 of a one-partition topic
        }),
        'INVALID_ARGUMENT',
      ],
      [
        P.encodeFrame(P.OP.TRANSACTION, 9, (w) => w.u16(0).u16(1).str('bad name!').u16(1).u32(2).u16(0).u16(0)),
        'INVALID_ARGUMENT',
      ],
    ];
    await c.expectErrors(cases);
    c.send(P.encodeFrame(P.OP.PING, 10));
    expect((await c.next())?.op).toBe(P.OP.PONG);
    c.close();
    expect(await queueCounts('out')).toEqual([0, 0]);
    const t = await rig.broker!.stats('t');
    expect(t.kind === 'topic' && Object.keys(t.groups)).toEqual([]);
  });
});
