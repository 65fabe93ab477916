// RELEASE (protocol version 6): a received message handed back by its receipt is visible again at
// once and its delivery is not counted, as Broker.releaseReceipt does embedded. A server of an older
// version has no RELEASE, and the remote client nacks there instead (a counted delivery).
import { describe, expect, it } from 'vitest';
import * as P from '../../src/protocol/index.js';
import { startNativeServer } from '../../src/server/native/index.js';
import { RawClient } from './raw-client.js';
import { servedBroker, withoutReceipts } from './served-broker.js';

const rig = servedBroker(async (b) => {
  await b.createQueue('q', { visibilityTimeoutMs: 60_000 });
});
const { start, client } = rig;

const counts = (): Promise<[number, number]> => rig.queueCounts('q');

describe('RELEASE', () => {
  it('hands a received message back at once, uncounted; its receipt is spent', async () => {
    const { url } = await start();
    const c = await client(url);
    await c.publish('q', [{ payload: 1 }, { payload: 2 }]);
    const [m] = await c.receive('q', { max: 1 });
    expect(await counts()).toEqual([1, 1]);
    await c.releaseReceipt('q', m.receipt);
    expect(await counts()).toEqual([2, 0]);
    await expect(m.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    const again = await c.receive('q', { max: 2 });
    expect(again.map((x) => [x.payload, x.deliveryCount])).toEqual([
      [1, 1],
      [2, 1],
    ]);
  });

  it('a receipt that names nothing current is RECEIPT_INVALID, and nothing changes', async () => {
    const { url } = await start();
    const c = await client(url);
    await c.publish('q', { payload: 1 });
    const [m] = await c.receive('q', { max: 1 });
    await m.ack();
    await expect(c.releaseReceipt('q', m.receipt)).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    await expect(c.releaseReceipt('nope', m.receipt)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await counts()).toEqual([0, 0]);
  });

  it('against a server of version 5 the client nacks with no delay instead: back at once, the delivery counted', async () => {
    const { url } = await start({ maxProtocolVersion: 5 });
    const c = await client(url);
    await c.publish('q', { payload: 1 });
    const [m] = await c.receive('q', { max: 1 });
    await c.releaseReceipt('q', m.receipt);
    const [again] = await c.receive('q', { max: 1, waitMs: 0 });
    expect([again.payload, again.deliveryCount]).toEqual([1, 2]);
  });

  it('a connection of version 5 that sends RELEASE gets PROTOCOL_ERROR, and stays open', async () => {
    const { port } = await start();
    await rig.broker!.publish('q', { payload: 1 });
    const [m] = await rig.broker!.receive('q');
    const raw = await RawClient.open(port, true, 5);
    raw.send(P.encodeFrame(P.OP.RELEASE, 7, (w) => P.encodeReceipt(w, { queue: 'q', receipt: m.receipt })));
    const f = (await raw.next())!;
    expect(f.op).toBe(P.OP.ERROR);
    expect(raw.error(f)).toMatchObject({ code: 'PROTOCOL_ERROR' });
    expect(raw.error(f).message).toMatch(/needs protocol version 6/);
    raw.send(P.encodeFrame(P.OP.PING, 8));
    expect((await raw.next())!.op).toBe(P.OP.PONG);
    raw.close();
    expect(await counts()).toEqual([0, 1]); // still leased
  });

  it('behind a Wharf that cannot hand back uncounted, the server nacks it with no delay (counted)', async () => {
    const { url } = await start({ wharf: withoutReceipts });
    const c = await client(url);
    await c.publish('q', { payload: 1 });
    const [m] = await c.receive('q', { max: 1 });
    await c.releaseReceipt('q', m.receipt);
    expect(await counts()).toEqual([1, 0]);
    const [again] = await c.receive('q', { max: 1, waitMs: 0 });
    expect([again.payload, again.deliveryCount]).toEqual([1, 2]);
  });

  it('through a server whose Wharf is a remote client, RELEASE goes upstream: uncounted', async () => {
    const { url } = await start();
    const upstream = await client(url);
    const relay = await startNativeServer(upstream, { port: 0 });
    try {
      const c = await client(`wharf://127.0.0.1:${relay.address().port}`);
      await c.publish('q', { payload: 1 });
      const [m] = await c.receive('q', { max: 1 });
      await c.releaseReceipt('q', m.receipt);
      const [again] = await rig.broker!.receive('q', { max: 1, waitMs: 0 });
      expect([again.payload, again.deliveryCount]).toEqual([1, 1]);
    } finally {
      await relay.close();
    }
  });

  it('a release made while reconnecting picks its op on the connection it goes out on', async () => {
    const { port } = await start();
    const c = await client(`wharf://127.0.0.1:${port}`);
    await c.publish('q', { payload: 1 });
    const [m] = await c.receive('q', { max: 1 });
    await rig.server!.close(); // a rollback: the server comes back pinned to version 5
    await new Promise((r) => setTimeout(r, 50));
    const released = c.releaseReceipt('q', m.receipt); // waits for the connection
    rig.server = await startNativeServer(rig.broker!, { port, maxProtocolVersion: 5 });
    await expect(released).resolves.toBeUndefined();
    const [again] = await c.receive('q', { max: 1, waitMs: 0 });
    expect([again.payload, again.deliveryCount]).toEqual([1, 2]); // nacked there: counted
  });
});
