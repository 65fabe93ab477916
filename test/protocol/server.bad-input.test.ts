// Bad input never crashes the server or changes what is stored: a malformed request gets an ERROR
// with its correlation id (the connection stays usable); a frame that breaks the stream (bad
// length, oversized, one-way op malformed) closes that one connection with an ERROR frame.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import * as P from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { RawClient } from './raw-client.js';

let broker: Broker;
let server: NativeServer;
let port: number;

async function snapshot(): Promise<string> {
  const topics = await broker.listTopics();
  const queues = await broker.listQueues();
  const t = await broker.stats('t');
  const q = await broker.stats('q');
  return JSON.stringify([
    topics.map((x) => x.name),
    queues.map((x) => x.name),
    t.kind === 'topic' ? t.partitions : null,
    q.kind === 'queue' ? q.depth : null,
  ]);
}

beforeAll(async () => {
  broker = await Broker.open({ inMemory: true });
  await broker.createTopic('t', { partitions: 1 });
  await broker.createQueue('q');
  await broker.publish('t', { payload: 1 });
  server = await startNativeServer(broker, { port: 0, maxFrameBytes: 64 * 1024 });
  port = server.address().port;
});

afterAll(async () => {
  await server.close();
  await broker.close();
});

async function stillServes(): Promise<void> {
  const c = await RawClient.open(port);
  c.send(P.encodeFrame(P.OP.PING, 5));
  expect((await c.next())?.op).toBe(P.OP.PONG);
  c.close();
}

describe('native server bad input', () => {
  it('a connection that does not start with HELLO gets PROTOCOL_ERROR and is closed', async () => {
    const c = await RawClient.open(port, false);
    c.send(P.encodeFrame(P.OP.PING, 1));
    const f = await c.next();
    expect(f?.correlationId).toBe(0);
    expect(c.error(f!).code).toBe('PROTOCOL_ERROR');
    await c.closedPromise;
  });

  it('an unknown op is answered with PROTOCOL_ERROR and the connection keeps working', async () => {
    const c = await RawClient.open(port);
    c.send(P.encodeFrame(0x7e, 9, (w) => w.u32(1)));
    const f = (await c.next())!;
    expect([f.op, f.correlationId, c.error(f).code]).toEqual([P.OP.ERROR, 9, 'PROTOCOL_ERROR']);
    c.send(P.encodeFrame(P.OP.PING, 10));
    expect((await c.next())?.op).toBe(P.OP.PONG);
    c.close();
  });

  it('an unknown op with correlation id 0 ends the connection, as every ERROR on id 0 does; others are unaffected', async () => {
    const c = await RawClient.open(port);
    c.send(P.encodeFrame(0x7e, 0, (w) => w.u32(1)));
    const f = (await c.next())!;
    expect([f.op, f.correlationId, c.error(f).code]).toEqual([P.OP.ERROR, 0, 'PROTOCOL_ERROR']);
    await c.closedPromise;
    await stillServes();
  });

  it('truncated and wrongly typed fields are PROTOCOL_ERROR or INVALID_ARGUMENT; nothing is stored', async () => {
    const before = await snapshot();
    const c = await RawClient.open(port);
    const cases: Array<[Buffer, string]> = [
      [P.encodeFrame(P.OP.PUBLISH, 2, (w) => w.str('t').u16(1)), 'PROTOCOL_ERROR'], // count 1, no record
      [P.encodeFrame(P.OP.PUBLISH, 3, (w) => w.str('t').u16(1).u32(3).u16(0x8000).u8(0)), 'PROTOCOL_ERROR'], // reserved mask bit
      [
        P.encodeFrame(P.OP.PUBLISH, 4, (w) =>
          w
            .str('t')
            .u16(1)
            .u32(7)
            .u16(1 << 4)
            .u8(7)
            .u32(0),
        ),
        'PROTOCOL_ERROR',
      ], // payload kind 7
      [
        P.encodeFrame(P.OP.PUBLISH, 5, (w) =>
          w
            .str('t')
            .u16(1)
            .u32(9)
            .u16(1 << 4)
            .u8(0)
            .lstr('{x'),
        ),
        'PROTOCOL_ERROR',
      ], // bad JSON payload
      [P.encodeFrame(P.OP.PUBLISH, 6, (w) => w.str('t').u16(1).u32(2).u16(0).u8(1)), 'PROTOCOL_ERROR'], // record length lies
      [P.encodeFrame(P.OP.CREATE_TOPIC, 7, (w) => w.str('x').lstr('{"partitions":"three"}')), 'INVALID_ARGUMENT'],
      [P.encodeFrame(P.OP.CREATE_TOPIC, 8, (w) => w.str('x').lstr('not json')), 'PROTOCOL_ERROR'],
      [P.encodeFrame(P.OP.SUBSCRIBE, 9, (w) => w.str('t').lstr('[1]').u32(10)), 'PROTOCOL_ERROR'],
      [P.encodeFrame(P.OP.SUBSCRIBE, 10, (w) => w.str('t').lstr('{"from":7}').u32(10)), 'INVALID_ARGUMENT'],
      [P.encodeFrame(P.OP.RECEIVE, 11, (w) => w.str('q').u32(0).u32(0).u32(0)), 'INVALID_ARGUMENT'],
      [P.encodeFrame(P.OP.ACK, 12, (w) => w.str('q').str('no-such-receipt')), 'RECEIPT_INVALID'],
      [P.encodeFrame(P.OP.NACK, 13, (w) => w.str('q').str('r').lstr('"x"')), 'PROTOCOL_ERROR'],
      [P.encodeFrame(P.OP.UNSUBSCRIBE, 14, (w) => w.u32(999)), 'NOT_FOUND'],
      [P.encodeFrame(P.OP.PING, 15, (w) => w.u8(1)), 'PROTOCOL_ERROR'], // trailing bytes
      [
        P.encodeFrame(P.OP.HELLO, 16, (w) => P.encodeHello(w, { minVersion: 1, maxVersion: 1, clientName: 'x' })),
        'PROTOCOL_ERROR',
      ], // twice
    ];
    await c.expectErrors(cases);
    c.close();
    expect(await snapshot()).toBe(before);
  });

  it('SUBSCRIBE refuses startOffsets naming a partition the topic lacks, a negative offset, or a group (INVALID_ARGUMENT)', async () => {
    const before = await snapshot();
    const c = await RawClient.open(port);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ startOffsets: { '1': 0 } }, 'startOffsets names partition "1"; topic "t" has partitions 0 to 0'],
      [{ startOffsets: { '-1': 0 } }, 'startOffsets names partition "-1"'],
      [{ startOffsets: { '0': -5 } }, 'startOffsets[0] is -5; use an offset n >= 0'],
      [{ startOffsets: { '0': '5' } }, 'startOffsets[0] is "5"'],
      [{ startOffsets: 5 }, 'startOffsets must be an object of partition -> offset'],
      [{ group: 'g', startOffsets: { '0': 0 } }, 'startOffsets is for a reader without a group'],
    ];
    for (const [options, message] of cases) {
      c.send(P.encodeFrame(P.OP.SUBSCRIBE, 31, (w) => P.encodeSubscribe(w, { name: 't', options, credits: 10 })));
      const f = (await c.next())!;
      expect([f.op, f.correlationId, c.error(f).code]).toEqual([P.OP.ERROR, 31, 'INVALID_ARGUMENT']);
      expect(c.error(f).message).toContain(message);
    }
    c.close();
    expect(await snapshot()).toBe(before);
    await stillServes();
  });

  it('BIND and UNBIND refuse a field beside target and options, and bind nothing', async () => {
    await broker.createExchange('bx', { type: 'fanout' });
    const c = await RawClient.open(port);
    for (const op of [P.OP.BIND, P.OP.UNBIND]) {
      c.send(
        P.encodeFrame(op, 21, (w) =>
          P.encodeNameOptions(w, { name: 'bx', options: { target: { queue: 'q' }, option: { pattern: 'a' } } }),
        ),
      );
      const f = (await c.next())!;
      expect([f.op, c.error(f).code]).toEqual([P.OP.ERROR, 'INVALID_ARGUMENT']);
      expect(c.error(f).message).toContain('"option"');
    }
    expect(await broker.listBindings('bx')).toEqual([]);
    c.close();
  });

  it('a request with correlation id 0 (reserved for pushes) closes that connection with PROTOCOL_ERROR', async () => {
    const c = await RawClient.open(port);
    c.send(P.encodeFrame(P.OP.PING, 0));
    const f = (await c.next())!;
    expect([f.op, f.correlationId]).toEqual([P.OP.ERROR, 0]);
    expect(c.error(f).code).toBe('PROTOCOL_ERROR');
    expect(await c.next()).toBeNull();
    await stillServes();
  });

  it('random bodies for every op never crash the server or change stored queues and topics', async () => {
    const ops = Object.values(P.OP).filter((op) => op < 0x80 && op !== P.OP.HELLO);
    const before = await broker.listTopics();
    const depth = (await broker.stats('q')) as { depth: number };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ops), fc.uint8Array({ maxLength: 64 }), async (op, bytes) => {
        const c = await RawClient.open(port);
        c.send(
          P.encodeFrame(op, 77, (w) => {
            w.ensure(bytes.length);
            w.buf.set(bytes, w.pos);
            w.pos += bytes.length;
          }),
        );
        c.send(P.encodeFrame(P.OP.PING, 78));
        // Either an answer (ERROR for 77, or a result when the bytes happen to be valid) then PONG, or a close.
        for (;;) {
          const f = await c.next();
          if (f === null || (f.op === P.OP.PONG && f.correlationId === 78)) break;
        }
        c.close();
      }),
      { numRuns: 150 },
    );
    expect((await broker.listTopics()).map((t) => t.name)).toEqual(before.map((t) => t.name));
    expect(((await broker.stats('q')) as { depth: number }).depth).toBe(depth.depth);
    await stillServes();
  });

  it('an oversized frame closes only that connection, with LIMIT_EXCEEDED', async () => {
    const other = await RawClient.open(port);
    const c = await RawClient.open(port);
    const header = Buffer.alloc(9);
    header.writeUInt32BE(10 * 1024 * 1024);
    header[4] = P.OP.PUBLISH;
    c.send(header);
    const f = (await c.next())!;
    expect([f.correlationId, c.error(f).code]).toEqual([0, 'LIMIT_EXCEEDED']);
    await c.closedPromise;
    other.send(P.encodeFrame(P.OP.PING, 3));
    expect((await other.next())?.op).toBe(P.OP.PONG);
    other.close();
  });

  it('a frame cut off by a disconnect is dropped without effect', async () => {
    const before = await snapshot();
    const c = await RawClient.open(port);
    const frame = P.encodeFrame(P.OP.PUBLISH, 2, (w) => P.encodePublish(w, 'q', [{ payload: 'half' }]));
    c.send(frame.subarray(0, frame.length - 3));
    await new Promise((r) => setTimeout(r, 30));
    c.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(await snapshot()).toBe(before);
    await stillServes();
  });
});
