// RECEIVE's attempt id (protocol version 4), as SQS's ReceiveRequestAttemptId: a RECEIVE sent again
// with the attempt id of one whose answer was lost gets the same messages and receipts while their
// leases hold (each lease starting again), and is a new receive once none does.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker, type QueueStats } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';
import * as P from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { RECEIVE_ATTEMPT_LIMITS, ReceiveAttempts } from '../../src/server/receive-attempts.js';
import { RawClient } from './raw-client.js';

/** This test's broker and server (one per test, closed after it). */
const rig: { broker: Broker | null; server: NativeServer | null } = { broker: null, server: null };
afterEach(async () => {
  await rig.server?.close();
  await rig.broker?.close();
  rig.server = rig.broker = null;
});

async function start(): Promise<number> {
  rig.broker = await Broker.open({ inMemory: true });
  await rig.broker.createQueue('q', { visibilityTimeoutMs: 60_000 });
  rig.server = await startNativeServer(rig.broker, { port: 0 });
  return rig.server.address().port;
}

/** One RECEIVE on a fresh version `version` connection; the deliveries it was answered with. */
async function receiveOnce(
  port: number,
  attemptId: string,
  o: P.ReceiveOptions = { max: 10, waitMs: 0 },
  version = 4,
): Promise<P.DecodedDelivery[]> {
  const c = await RawClient.open(port, true, version);
  c.send(P.encodeFrame(P.OP.RECEIVE, 9, (w) => P.encodeReceive(w, 'q', o, version, attemptId)));
  const f = (await c.next())!;
  c.close();
  if (f.op === P.OP.ERROR) throw new Error(c.error(f).message);
  expect(f.op).toBe(P.OP.RECEIVED);
  return P.decodeReceived(new P.WireReader().reset(f.body));
}

const inFlight = async (): Promise<number> => ((await rig.broker!.stats('q')) as QueueStats).inFlight;

describe('RECEIVE attempt ids', () => {
  it('a retry gets the same messages and receipts; another attempt does not get them; settled ones are left out', async () => {
    const port = await start();
    await rig.broker!.publish('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    const first = await receiveOnce(port, 'attempt-a', { max: 2, waitMs: 0 });
    expect(first.map((d) => d.message.payload)).toEqual([1, 2]);
    const again = await receiveOnce(port, 'attempt-a', { max: 2, waitMs: 0 });
    expect(again.map((d) => [d.message.payload, d.receipt, d.deliveryCount])).toEqual(
      first.map((d) => [d.message.payload, d.receipt, 1]),
    );
    expect(await inFlight()).toBe(2);
    const other = await receiveOnce(port, 'attempt-b');
    expect(other.map((d) => d.message.payload)).toEqual([3]);
    await rig.broker!.ackReceipt('q', first[0].receipt);
    const third = await receiveOnce(port, 'attempt-a', { max: 2, waitMs: 0 });
    expect(third.map((d) => [d.message.payload, d.receipt])).toEqual([[2, first[1].receipt]]);
    await rig.broker!.ackReceipt('q', first[1].receipt); // the retry's receipt is the first one's
  });

  it('once no lease of the first answer holds, a retry is a new receive', async () => {
    const port = await start();
    await rig.broker!.publish('q', { payload: 'x' });
    const first = await receiveOnce(port, 'attempt-a', { max: 1, waitMs: 0, visibilityTimeoutMs: 30 });
    await new Promise((r) => setTimeout(r, 80)); // the lease ends; the message is visible again
    const again = await receiveOnce(port, 'attempt-a', { max: 1, waitMs: 500, visibilityTimeoutMs: 60_000 });
    expect(again.map((d) => d.message.payload)).toEqual(['x']);
    expect(again[0].receipt).not.toBe(first[0].receipt);
    expect(again[0].deliveryCount).toBe(2);
  });

  it('a retry that comes while the first RECEIVE still waits (its connection not seen gone) waits for it, and gets its answer', async () => {
    const port = await start();
    const a = await RawClient.open(port, true, 4);
    const b = await RawClient.open(port, true, 4);
    a.send(P.encodeFrame(P.OP.RECEIVE, 9, (w) => P.encodeReceive(w, 'q', { max: 10, waitMs: 2_000 }, 4, 'attempt-a')));
    await new Promise((r) => setTimeout(r, 50));
    b.send(P.encodeFrame(P.OP.RECEIVE, 9, (w) => P.encodeReceive(w, 'q', { max: 10, waitMs: 2_000 }, 4, 'attempt-a')));
    await new Promise((r) => setTimeout(r, 50));
    await rig.broker!.publish('q', { payload: 'one' });
    const fromA = P.decodeReceived(new P.WireReader().reset((await a.next())!.body));
    const fromB = P.decodeReceived(new P.WireReader().reset((await b.next())!.body));
    a.close();
    b.close();
    expect(fromB.map((d) => [d.message.payload, d.receipt])).toEqual(fromA.map((d) => ['one', d.receipt]));
    expect(await inFlight()).toBe(1);
  });

  it('retries of one attempt run one at a time: two that wait together do not lease two sets of messages', async () => {
    const port = await start();
    const [a, b, c] = await Promise.all([
      RawClient.open(port, true, 4),
      RawClient.open(port, true, 4),
      RawClient.open(port, true, 4),
    ]);
    const receive = (client: RawClient, waitMs: number): void =>
      client.send(P.encodeFrame(P.OP.RECEIVE, 9, (w) => P.encodeReceive(w, 'q', { max: 10, waitMs }, 4, 'attempt-a')));
    receive(a, 200); // ends empty: nothing is published until the retries wait
    await new Promise((r) => setTimeout(r, 50));
    receive(b, 2_000);
    receive(c, 2_000);
    await new Promise((r) => setTimeout(r, 400));
    await rig.broker!.publish('q', [{ payload: 1 }]);
    await rig.broker!.publish('q', [{ payload: 2 }]);
    const answer = async (client: RawClient): Promise<string[]> =>
      P.decodeReceived(new P.WireReader().reset((await client.next(3_000))!.body)).map((d) => d.receipt);
    expect(await answer(a)).toEqual([]);
    const fromB = await answer(b);
    const fromC = await answer(c);
    for (const x of [a, b, c]) x.close();
    expect(fromB.length).toBeGreaterThan(0);
    expect(fromC).toEqual(fromB); // the second retry is answered from the first's answer
    expect(await inFlight()).toBe(fromB.length);
  });

  it('an attempt id outside printable ASCII, or too long, is a malformed frame', async () => {
    const port = await start();
    for (const id of ['with\u0000nul', 'é', 'x'.repeat(129)]) {
      const c = await RawClient.open(port, true, 4);
      c.send(P.encodeFrame(P.OP.RECEIVE, 9, (w) => P.encodeReceive(w, 'q', { max: 1, waitMs: 0 }, 4, id)));
      const f = (await c.next())!;
      c.close();
      expect([f.op, c.error(f).code]).toEqual([P.OP.ERROR, 'PROTOCOL_ERROR']);
    }
  });

  it('a retry starts each lease again; a connection of version 3 sends no attempt id and gets fresh messages', async () => {
    const port = await start();
    await rig.broker!.publish('q', [{ payload: 1 }, { payload: 2 }]);
    const first = await receiveOnce(port, 'attempt-a', { max: 1, waitMs: 0, visibilityTimeoutMs: 1_000 });
    await new Promise((r) => setTimeout(r, 600));
    await receiveOnce(port, 'attempt-a', { max: 1, waitMs: 0, visibilityTimeoutMs: 1_000 }); // its lease: 1 s from now
    await new Promise((r) => setTimeout(r, 600)); // past the first lease's end, within the second's
    await rig.broker!.ackReceipt('q', first[0].receipt);
    const v3 = await receiveOnce(port, 'attempt-a', { max: 10, waitMs: 0 }, 3);
    expect(v3.map((d) => d.message.payload)).toEqual([2]);
  });
});

describe('ReceiveAttempts bounds', () => {
  /** An answer of one delivery of n bytes, receipt 'r0': counted n + 2 bytes. */
  const answer = (bytes: number, receipts = 1): { items: Buffer[]; receipts: string[] } => ({
    items: Array.from({ length: receipts }, () => Buffer.alloc(bytes)),
    receipts: Array.from({ length: receipts }, (_, i) => `r${i}`),
  });

  it('forgets the oldest past maxAttempts or maxBytes, and each answer after ttlMs', () => {
    const clock = new ManualClock();
    const book = new ReceiveAttempts<Buffer>(clock, (b) => b.length, { maxAttempts: 2, maxBytes: 100, ttlMs: 1_000 });
    book.remember('q', 'a', answer(10));
    book.remember('q', 'b', answer(10));
    book.remember('q', 'c', answer(10));
    expect([book.get('q', 'a'), book.size]).toEqual([undefined, 2]);
    book.remember('q', 'd', answer(76)); // 12 + 12 + 78 > 100: the oldest ('b') goes
    expect(book.get('q', 'b')).toBeUndefined();
    expect(book.get('q', 'c')).toBeDefined();
    expect(book.sizeBytes).toBe(90);
    book.remember('q', 'huge', answer(99)); // larger than all of it: not kept
    expect(book.get('q', 'huge')).toBeUndefined();
    book.remember('q', 'empty', answer(0, 0)); // nothing leased: nothing to answer again
    expect(book.get('q', 'empty')).toBeUndefined();
    clock.advance(1_000);
    book.remember('q', 'e', answer(1)); // expired answers at the front go as a new one comes
    expect(book.size).toBe(1);
    expect([book.get('q', 'c'), book.get('q', 'd')]).toEqual([undefined, undefined]);
    expect(book.get('other', 'e')).toBeUndefined();
  });

  it('a retry keeps the deliveries whose lease it could extend, in order, and forgets an answer none of whose leases holds', async () => {
    const book = new ReceiveAttempts<string>(new ManualClock(), (s) => s.length);
    book.remember('q', 'a', { items: ['one', 'two', 'three'], receipts: ['r1', 'r2', 'r3'] });
    const extend =
      (valid: string[]) =>
      async (receipt: string): Promise<void> => {
        if (!valid.includes(receipt)) throw new Error('RECEIPT_INVALID');
      };
    expect(await book.retry('q', 'a', extend(['r1', 'r3']))).toEqual({
      items: ['one', 'three'],
      receipts: ['r1', 'r3'],
    });
    expect(book.get('q', 'a')).toMatchObject({ items: ['one', 'three'], receipts: ['r1', 'r3'] });
    expect(await book.retry('q', 'a', extend([]))).toBeNull();
    expect(book.get('q', 'a')).toBeUndefined();
    expect(await book.retry('q', 'never', extend(['r1']))).toBeNull();
  });

  it('the defaults are SQS-like: five minutes, bounded', () => {
    expect(RECEIVE_ATTEMPT_LIMITS).toEqual({ maxAttempts: 10_000, maxBytes: 64 * 1024 * 1024, ttlMs: 300_000 });
  });
});
