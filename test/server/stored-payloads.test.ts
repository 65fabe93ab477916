// The server's pass-through paths: a queue delivery written from its stored record must be the
// very bytes the decoded message would encode to, and a JSON payload published as text is checked
// and stored as it came (never parsed and serialised again on the way in or out).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, decodeMessage, encodeMessage, type MessageInput, type QueueMessage } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { JsonText } from '../../src/common/index.js';
import * as P from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { encodeStoredDelivery } from '../../src/server/native/stored-delivery.js';
import { decodeBatch, encodeBatch, type LogRecord } from '../../src/storage/index.js';
import { RawClient } from '../protocol/raw-client.js';

/** The record a message is stored as (encoded, then read back as the log reads it). */
function stored(m: MessageInput): LogRecord {
  const enc = encodeMessage(m, 1_700_000_000_123, 1024 * 1024);
  return decodeBatch(encodeBatch({ baseOffset: 7, records: [enc.record] })).records[0];
}

/** A queue delivery's facts (a lease), then a topic delivery's (a position), and a group member's (and its grant). */
const metas: P.DeliveryMeta[] = [
  { deliveryId: 3, deliveryCount: 2, receipt: 'e:5:9', firstDeliveredAt: 1_700_000_000_456 },
  { deliveryId: 5, deliveryCount: 1, receipt: '9f3a0c1d:0:1234567890123', firstDeliveredAt: 1 },
  { deliveryId: 4, deliveryCount: 1, partition: 2, offset: 77 },
  { deliveryId: 6, deliveryCount: 1, partition: 2, offset: 78, assignmentEpoch: 3 },
];

function bothEncodings(rec: LogRecord): [string, string] {
  const a = new P.WireWriter();
  const b = new P.WireWriter();
  for (const meta of metas) {
    // A lease's receipt is written from its parts, and from the string without them.
    const [epoch, key, token] = meta.receipt === undefined ? [] : meta.receipt.split(':');
    encodeStoredDelivery(
      a,
      rec,
      meta,
      epoch === undefined ? null : { receiptEpoch: epoch, receiptKey: Number(key), receiptToken: Number(token) },
    );
    encodeStoredDelivery(a, rec, meta);
    P.encodeDelivery(b, decodeMessage(rec), meta);
    P.encodeDelivery(b, decodeMessage(rec), meta);
  }
  return [a.take().toString('hex'), b.take().toString('hex')];
}

describe('a delivery written from its stored record', () => {
  const cases: Array<[string, MessageInput]> = [
    ['a JSON payload', { payload: { a: 1, b: [true, null, 'x'] } }],
    ['a byte payload', { payload: new Uint8Array([0, 1, 2, 255]) }],
    ['an empty byte payload', { payload: new Uint8Array(0) }],
    ['no payload (JSON null)', {}],
    [
      'every optional field',
      {
        id: 'm-1',
        type: 'order.created',
        key: 'k',
        priority: 7,
        groupId: 'g',
        dedupId: 'd',
        routingKey: 'a.b',
        ttlMs: 5000,
        headers: { x: '1', y: 'two' },
        payload: 'text',
      },
    ],
    ['non-ASCII text everywhere', { type: 'тип', key: '鍵', headers: { ключ: 'значение ✓' }, payload: { s: 'ü€𝄞' } }],
    ['a header value starting with a byte order mark', { headers: { bom: '\ufeffx' }, payload: 1 }],
    [
      'header names an object reorders or drops',
      { headers: { b: '1', '2': 'two', '1': 'one', a: '3' }, payload: null },
    ],
    ['a producer stamp the consumer never sees', { producerId: 'p', sequence: 41, payload: 2 }],
    ['a large priority', { priority: 2 ** 31 + 5, payload: 3 }],
  ];
  for (const [name, m] of cases) {
    it(`matches the decoded message's encoding: ${name}`, () => {
      const [fromRecord, fromMessage] = bothEncodings(stored(m));
      expect(fromRecord).toBe(fromMessage);
    });
  }

  it('matches for a record whose headers an object would reorder, merge or drop', () => {
    const h = (key: string, value: string): { key: string; value: Uint8Array } => ({ key, value: Buffer.from(value) });
    // Not what encodeMessage writes, but what a stored record may hold (copied, dead-lettered, or
    // written by another front-end): a repeated name, an integer-like name, __proto__.
    const records = [
      [h('b', '1'), h('2', 'two'), h('b', '3'), h('wharf.ct', 'json')],
      [h('x', '1'), h('__proto__', 'p'), h('wharf.id', 'id-1')],
      [h('z', '1'), h('10', 'ten'), h('9', 'nine')],
      [h('b', '1'), h('c', '2'), h('b', '3')],
    ];
    for (const headers of records) {
      const rec = decodeBatch(
        encodeBatch({ baseOffset: 0, records: [{ key: null, value: Buffer.from('[1]'), headers, timestampMs: 5 }] }),
      ).records[0];
      const [fromRecord, fromMessage] = bothEncodings(rec);
      expect(fromRecord).toBe(fromMessage);
    }
  });

  it('matches for any message', () => {
    const text = fc.string({ unit: 'binary', maxLength: 20 });
    const message = fc.record(
      {
        type: text,
        key: fc.option(text, { nil: null }),
        headers: fc.dictionary(
          text.filter((k) => k.length > 0 && !k.startsWith('wharf.')),
          text,
          { maxKeys: 4 },
        ),
        payload: fc.oneof(fc.jsonValue(), fc.uint8Array({ maxLength: 40 })),
        priority: fc.nat(2 ** 32 - 1),
        groupId: text,
        dedupId: text,
        routingKey: text,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(message, (m) => {
        const [fromRecord, fromMessage] = bothEncodings(stored(m as MessageInput));
        expect(fromRecord).toBe(fromMessage);
      }),
      { numRuns: 300 },
    );
  });
});

describe('JSON payloads published as text', () => {
  let broker: Broker;
  let server: NativeServer;
  let client: RemoteWharf;
  let port: number;

  beforeAll(async () => {
    broker = await Broker.open({ inMemory: true });
    server = await startNativeServer(broker, { port: 0 });
    port = server.address().port;
    client = await connect(`wharf://127.0.0.1:${port}`);
  });

  afterAll(async () => {
    await client.close();
    await server.close();
    await broker.close();
  });

  /** A PUBLISH frame whose one message has `text` as its JSON payload, byte for byte. */
  function publishText(correlationId: number, queue: string, text: Buffer): Buffer {
    const f = P.encodeFrame(P.OP.PUBLISH, correlationId, (w) => P.encodePublish(w, queue, [{ payload: text }]));
    // Bytes and JSON text share a layout (kind:u8, then u32 length and bytes): flip the kind.
    const marker = Buffer.concat([Buffer.from([P.PAYLOAD_BYTES]), Buffer.alloc(4), text]);
    marker.writeUInt32BE(text.length, 1);
    const at = f.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    f[at] = P.PAYLOAD_JSON;
    return f;
  }

  async function publishRaw(queue: string, text: Buffer): Promise<{ op: number; code: string }> {
    const c = await RawClient.open(port);
    try {
      c.send(publishText(2, queue, text));
      const f = await c.next();
      if (f === null) throw new Error('the server closed the connection');
      return f.op === P.OP.ERROR ? { op: f.op, code: c.error(f).code } : { op: f.op, code: '' };
    } finally {
      c.close();
    }
  }

  it('is stored and delivered as it came, and reads as the same value embedded and remote', async () => {
    await broker.createQueue('jt', { retry: { initialDelayMs: 10, maxDelayMs: 10 } });
    const text = Buffer.from('{"a": 1,  "b": [1, 2], "c": "\\u00e9"}');
    expect((await publishRaw('jt', text)).op).toBe(P.OP.PUBLISH_OK);
    // Embedded: the value (a lease of 1 ms, so the message is visible again at once).
    const [embedded] = await broker.receive('jt', { max: 1, visibilityTimeoutMs: 1 });
    expect(embedded.payload).toEqual({ a: 1, b: [1, 2], c: 'é' });
    await new Promise((r) => setTimeout(r, 20));
    // Over the wire: the exact text, spaces and escapes kept, by RECEIVE (a short lease, so the
    // message is visible again at once) and by CONSUME.
    const receiver = await RawClient.open(port);
    receiver.send(
      P.encodeFrame(P.OP.RECEIVE, 4, (w) =>
        P.encodeReceive(w, 'jt', { max: 1, waitMs: 1_000, visibilityTimeoutMs: 1 }, 1),
      ),
    );
    const received = await receiver.next();
    expect(received?.op).toBe(P.OP.RECEIVED);
    expect(received?.body.includes(text)).toBe(true);
    receiver.close();
    await new Promise((r) => setTimeout(r, 20));
    const raw = await RawClient.open(port);
    raw.send(P.encodeFrame(P.OP.CONSUME, 3, (w) => P.encodeSubscribe(w, { name: 'jt', options: {}, credits: 1 })));
    const frames = [await raw.next(), await raw.next()];
    const deliver = frames.find((f) => f?.op === P.OP.DELIVER);
    expect(deliver?.body.includes(text)).toBe(true);
    raw.close();
    // The remote client and the embedded broker both read the value.
    await new Promise((r) => setTimeout(r, 50));
    const [m] = await client.receive('jt', { max: 1, waitMs: 2_000, visibilityTimeoutMs: 60_000 });
    expect(m.payload).toEqual({ a: 1, b: [1, 2], c: 'é' });
    await m.ack();
  });

  it('comes back as it came from a topic too (SUBSCRIBE)', async () => {
    await broker.createTopic('jt-topic', { partitions: 1 });
    const text = Buffer.from('{ "n": 12345678901234567890 }');
    const c = await RawClient.open(port);
    const f = P.encodeFrame(P.OP.PUBLISH, 2, (w) => P.encodePublish(w, 'jt-topic', [{ payload: text }]));
    const marker = Buffer.concat([Buffer.from([P.PAYLOAD_BYTES, 0, 0, 0, text.length]), text]);
    f[f.indexOf(marker)] = P.PAYLOAD_JSON;
    c.send(f);
    expect((await c.next())?.op).toBe(P.OP.PUBLISH_OK);
    c.send(
      P.encodeFrame(P.OP.SUBSCRIBE, 3, (w) =>
        P.encodeSubscribe(w, { name: 'jt-topic', options: { from: 'earliest' }, credits: 10 }),
      ),
    );
    const frames = [await c.next(), await c.next()];
    expect(frames.find((x) => x?.op === P.OP.DELIVER)?.body.includes(text)).toBe(true);
    c.close();
  });

  it('a number JSON cannot carry back is stored as the value serialised, as before; other numbers as sent', async () => {
    await broker.createQueue('numbers');
    expect((await publishRaw('numbers', Buffer.from('[1e400, -0, -0.5, 12345678901234567890]'))).op).toBe(
      P.OP.PUBLISH_OK,
    );
    expect((await publishRaw('numbers', Buffer.from('{"x": 1e3, "id": "3e8f-0a"}'))).op).toBe(P.OP.PUBLISH_OK);
    const [unsafe, safe] = await broker.receive('numbers', { max: 2 });
    expect(unsafe.payload).toEqual([null, 0, -0.5, 12345678901234567000]);
    expect(Object.is((unsafe.payload as number[])[1], -0)).toBe(false);
    expect(safe.payload).toEqual({ x: 1000, id: '3e8f-0a' });
    // The safe text was kept as sent: its exponent comes back over the wire.
    const c = await RawClient.open(port);
    await safe.nack({ delayMs: 0 });
    c.send(
      P.encodeFrame(P.OP.RECEIVE, 4, (w) =>
        P.encodeReceive(w, 'numbers', { max: 1, waitMs: 1_000, visibilityTimeoutMs: 60_000 }, 1),
      ),
    );
    expect((await c.next())?.body.includes(Buffer.from('{"x": 1e3, "id": "3e8f-0a"}'))).toBe(true);
    c.close();
  });

  it('a server in front of a Wharf that is not the embedded Broker hands it JSON payloads as values', async () => {
    // A relay: a native server whose Wharf is a remote client of the first server.
    await broker.createQueue('relayed');
    const relay = await startNativeServer(client, { port: 0 });
    const viaRelay = await connect(`wharf://127.0.0.1:${relay.address().port}`);
    try {
      await viaRelay.publish('relayed', { payload: { a: 1 } });
      const [m] = await broker.receive('relayed', { max: 1 });
      expect(m.payload).toEqual({ a: 1 });
    } finally {
      await viaRelay.close();
      await relay.close();
    }
  });

  it('invalid JSON is refused and nothing is stored', async () => {
    await broker.createQueue('bad-json');
    const r = await publishRaw('bad-json', Buffer.from('{"a": '));
    expect(r).toEqual({ op: P.OP.ERROR, code: 'PROTOCOL_ERROR' });
    const stats = await broker.stats('bad-json');
    expect(stats.kind === 'queue' ? stats.depth : -1).toBe(0);
  });

  it('text that is not UTF-8 is read with replacement characters, as before', async () => {
    await broker.createQueue('not-utf8');
    const text = Buffer.concat([Buffer.from('"a'), Buffer.from([0xff]), Buffer.from('b"')]);
    expect((await publishRaw('not-utf8', text)).op).toBe(P.OP.PUBLISH_OK);
    // Over the wire, the stored text holds U+FFFD (EF BF BD), not the byte 0xFF.
    const c = await RawClient.open(port);
    c.send(
      P.encodeFrame(P.OP.RECEIVE, 4, (w) =>
        P.encodeReceive(w, 'not-utf8', { max: 1, waitMs: 1_000, visibilityTimeoutMs: 1 }, 1),
      ),
    );
    const received = await c.next();
    expect(received?.body.includes(Buffer.from('"a\u{fffd}b"'))).toBe(true);
    expect(received?.body.includes(text)).toBe(false);
    c.close();
    await new Promise((r) => setTimeout(r, 20));
    const [m] = await broker.receive('not-utf8', { max: 1 });
    expect((m as QueueMessage).payload).toBe('a\ufffdb');
  });

  it('a decoded JSON payload is a JsonText over the frame', () => {
    const f = P.encodeFrame(P.OP.PUBLISH, 1, (w) => P.encodePublish(w, 'q', [{ payload: { z: [1] } }]));
    const r = new P.WireReader().reset(f, 9, f.length);
    const payload = P.decodePublish(r).messages[0].payload;
    expect(payload).toBeInstanceOf(JsonText);
    expect((payload as Uint8Array).buffer).toBe(f.buffer); // a view of the frame, not a copy
    expect(Buffer.from(payload as Uint8Array).toString()).toBe('{"z":[1]}');
  });
});

describe('a delivery the protocol cannot carry', () => {
  it('fails like a handler failure (the broker retries it) and the server and connection go on', async () => {
    // A broker whose stored message has a type longer than a u16 string holds (publish refuses
    // such a type now; data stored before that could still hold one).
    const outcomes: string[] = [];
    const message = (type: string, payload: number): QueueMessage => ({
      id: `m${payload}`,
      type,
      timestamp: 1,
      key: null,
      headers: {},
      payload,
      queue: 'q',
      deliveryCount: 1,
      receipt: `r${payload}`,
      firstDeliveredAt: 1,
      ack: () => Promise.resolve(),
      nack: () => Promise.resolve(),
      extendVisibility: () => Promise.resolve(),
    });
    const fake = {
      consume: (_queue: string, _options: unknown, handler: (m: QueueMessage) => Promise<void> | void) => {
        for (const m of [message('x'.repeat(70_000), 1), message('ok', 2)]) {
          void Promise.resolve(handler(m)).then(
            () => outcomes.push(`${m.id} ok`),
            (err: Error) => outcomes.push(`${m.id} failed: ${err.message.slice(0, 60)}`),
          );
        }
        return Promise.resolve({ queue: 'q', close: () => Promise.resolve(), ended: new Promise(() => undefined) });
      },
    };
    const server = await startNativeServer(fake as unknown as Parameters<typeof startNativeServer>[0], { port: 0 });
    const client = await connect(`wharf://127.0.0.1:${server.address().port}`);
    const got: unknown[] = [];
    const consumer = await client.consume('q', { prefetch: 2, concurrency: 2 }, (m) => void got.push(m.payload));
    for (let i = 0; i < 100 && outcomes.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([2]);
    expect(outcomes.sort()).toEqual([
      'm1 failed: the message cannot be sent over the native protocol: string ',
      'm2 ok',
    ]);
    await consumer.close();
    await client.close();
    await server.close();
  });
});
