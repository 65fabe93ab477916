// Every codec produces exactly the bytes docs/protocol.md specifies, and decodes them back.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonText, WharfError } from '../../src/common/index.js';
import * as P from '../../src/protocol/index.js';
import type { JsonValue } from '../../src/broker/index.js';

const hex = (b: Buffer): string => b.toString('hex');

/** Decodes a whole frame: checks the prefix and hands the body to `decode`. */
function body<T>(frame: Buffer, op: number, decode: (r: P.WireReader) => T): T {
  expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
  expect(frame[4]).toBe(op);
  return decode(new P.WireReader().reset(frame, 9, frame.length));
}

describe('codec golden fixtures', () => {
  it('HELLO / HELLO_OK', () => {
    const hello = P.encodeFrame(P.OP.HELLO, 1, (w) =>
      P.encodeHello(w, { minVersion: 1, maxVersion: 1, clientName: 'js' }),
    );
    expect(hex(hello)).toBe('0000000d01000000010001000100026a73');
    expect(body(hello, P.OP.HELLO, P.decodeHello)).toEqual({ minVersion: 1, maxVersion: 1, clientName: 'js' });
    const ok = { version: 1, maxFrameBytes: 16777216, maxInFlight: 4096, idleTimeoutMs: 60000, serverName: 'wharf' };
    const f = P.encodeFrame(P.OP.HELLO_OK, 1, (w) => P.encodeHelloOk(w, ok));
    expect(hex(f)).toBe('0000001a8100000001000101000000000010000000ea6000057768617266');
    expect(body(f, P.OP.HELLO_OK, P.decodeHelloOk)).toEqual(ok);
  });

  it('ERROR carries the WharfError code and message', () => {
    const f = P.encodeFrame(P.OP.ERROR, 7, (w) => P.encodeError(w, new WharfError('NOT_FOUND', 'no topic')));
    expect(hex(f)).toBe('00000020ff0000000700094e4f545f464f554e44000000086e6f20746f706963ffffffff');
    const e = body(f, P.OP.ERROR, P.decodeError);
    expect(e).toBeInstanceOf(WharfError);
    expect([e.code, e.message, e.retryAfterMs]).toEqual(['NOT_FOUND', 'no topic', undefined]);
    const q = P.encodeFrame(P.OP.ERROR, 1, (w) =>
      P.encodeError(w, new WharfError('QUEUE_FULL', 'full', { retryAfterMs: 250 })),
    );
    expect(body(q, P.OP.ERROR, P.decodeError).retryAfterMs).toBe(250);
  });

  it('PUBLISH with an idempotent producer stamp, and PUBLISH_OK', () => {
    const f = P.encodeFrame(P.OP.PUBLISH, 2, (w) => P.encodePublish(w, 'q', [{ key: 'k', payload: { a: 1 } }], 'p', 5));
    expect(hex(f)).toBe('0000002a200000000200017100010000001c181400016b00000000077b2261223a317d0001700000000000000005');
    // A JSON payload is decoded as its checked text (JsonText), stored as it came.
    const decoded = body(f, P.OP.PUBLISH, P.decodePublish);
    const payload = decoded.messages[0].payload;
    expect(payload).toBeInstanceOf(JsonText);
    expect(Buffer.from(payload as Uint8Array).toString('utf8')).toBe('{"a":1}');
    expect({ ...decoded, messages: [{ ...decoded.messages[0], payload: { a: 1 } }] }).toEqual({
      target: 'q',
      messages: [{ key: 'k', payload: { a: 1 }, producerId: 'p', sequence: 5 }],
    });
    // docs/protocol.md section 11: a queue's answer carries no partition or offset (-1 each).
    const ok = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) => P.encodePublishOk(w, [{ id: 'm1' }], P.PROTOCOL_VERSION));
    expect(hex(ok)).toBe('0000001ca00000000200010000026d31ffffffffffffffffffffffff00000000');
    expect(body(ok, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual([{ id: 'm1' }]);
    // A topic's answer carries both.
    const topicOk = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) =>
      P.encodePublishOk(w, [{ id: 'm1', partition: 0, offset: 42 }], P.PROTOCOL_VERSION),
    );
    expect(hex(topicOk)).toBe('0000001ca00000000200010000026d3100000000000000000000002a00000000');
    expect(body(topicOk, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual([{ id: 'm1', partition: 0, offset: 42 }]);
    // A repeat of a stored sequence: flags 0x03 from version 4, 0x01 (duplicate alone) before it.
    const repeat = [{ id: 'm1', duplicate: true, repeatedSequence: true }];
    const v4 = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) => P.encodePublishOk(w, repeat, 4));
    expect(hex(v4)).toBe('0000001ca00000000200010300026d31ffffffffffffffffffffffff00000000');
    expect(body(v4, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual(repeat);
    const v3 = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) => P.encodePublishOk(w, repeat, 3));
    expect(hex(v3)).toBe('0000001ca00000000200010100026d31ffffffffffffffffffffffff00000000');
    expect(body(v3, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual([{ id: 'm1', duplicate: true }]);
    // An exchange's answer that reached no target: flags 0x04 from version 5, so routed 0 is told
    // from "not an exchange"; before it, the result says nothing of routing.
    const unroutable = [{ id: 'm1', routed: 0 }];
    const v5 = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) => P.encodePublishOk(w, unroutable, 5));
    expect(hex(v5)).toBe('0000001ca00000000200010400026d31ffffffffffffffffffffffff00000000');
    expect(body(v5, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual(unroutable);
    const v4Unroutable = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) => P.encodePublishOk(w, unroutable, 4));
    expect(hex(v4Unroutable)).toBe('0000001ca00000000200010000026d31ffffffffffffffffffffffff00000000');
    expect(body(v4Unroutable, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual([{ id: 'm1' }]);
    const routedTwice = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) => P.encodePublishOk(w, [{ id: 'm1', routed: 2 }], 5));
    expect(body(routedTwice, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual([{ id: 'm1', routed: 2 }]);
    // A queue's overflow policy dead-lettered (flags 0x08) or dropped (0x10) the message: from version 8.
    const overflowed = [
      { id: 'm1', overflow: 'dead-lettered' as const },
      { id: 'm2', overflow: 'dropped' as const },
    ];
    const v8 = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) => P.encodePublishOk(w, overflowed, 8));
    expect(hex(v8)).toBe(
      '00000031a00000000200020800026d31ffffffffffffffffffffffff00000000' + '1000026d32ffffffffffffffffffffffff00000000',
    );
    expect(body(v8, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual(overflowed);
    const v7 = P.encodeFrame(P.OP.PUBLISH_OK, 2, (w) => P.encodePublishOk(w, overflowed, 7));
    expect(body(v7, P.OP.PUBLISH_OK, P.decodePublishOk)).toEqual([{ id: 'm1' }, { id: 'm2' }]);
    // Reserved bits, or both overflow bits at once, fail the frame.
    for (const flags of ['20', '40', '80', '18']) {
      const frame = Buffer.from(hex(ok).slice(0, 22) + flags + hex(ok).slice(24), 'hex');
      expect(() => body(frame, P.OP.PUBLISH_OK, P.decodePublishOk)).toThrow(/reserved bit|both overflow/);
    }
  });

  it('CREDIT and SETTLE', () => {
    const c = P.encodeFrame(P.OP.CREDIT, 0, (w) => P.encodeCredit(w, 1, 100));
    expect(hex(c)).toBe('0000000d31000000000000000100000064');
    expect(body(c, P.OP.CREDIT, P.decodeCredit)).toEqual({ subscriptionId: 1, credits: 100 });
    const s = P.encodeFrame(P.OP.SETTLE, 0, (w) =>
      P.encodeSettle(w, { subscriptionId: 1, deliveryId: 9, outcome: 'failed', error: 'x' }),
    );
    expect(hex(s)).toBe('0000001332000000000000000100000009010000000178');
    expect(body(s, P.OP.SETTLE, (r) => P.decodeSettle(r, 1))).toEqual({
      subscriptionId: 1,
      deliveryId: 9,
      outcome: 'failed',
      error: 'x',
    });
  });

  it('SETTLE outcome 2, released (version 10); a connection of version 9 refuses it as malformed', () => {
    const s = P.encodeFrame(P.OP.SETTLE, 0, (w) =>
      P.encodeSettle(w, { subscriptionId: 1, deliveryId: 9, outcome: 'released', error: '' }),
    );
    expect(hex(s)).toBe('00000012320000000000000001000000090200000000');
    expect(body(s, P.OP.SETTLE, (r) => P.decodeSettle(r, 10))).toEqual({
      subscriptionId: 1,
      deliveryId: 9,
      outcome: 'released',
      error: '',
    });
    expect(() => body(s, P.OP.SETTLE, (r) => P.decodeSettle(r, 9))).toThrow(
      /outcome 2 \(released\) needs protocol version 10/,
    );
    const three = Buffer.from(hex(s).replace(/0000000902/, '0000000903'), 'hex');
    expect(() => body(three, P.OP.SETTLE, (r) => P.decodeSettle(r, 10))).toThrow(/outcome 3 is not one of 0 to 2/);
  });

  it('SETTLE_BATCH: successes as runs of delivery ids plus a credit grant', () => {
    const f = P.encodeFrame(P.OP.SETTLE_BATCH, 0, (w) => P.encodeSettleBatch(w, 1, 5, [3, 4, 9, 1]));
    expect(hex(f)).toBe('0000001f36000000000000000100000005000200000003000000040000000900000001');
    expect(body(f, P.OP.SETTLE_BATCH, P.decodeSettleBatch)).toEqual({
      subscriptionId: 1,
      credits: 5,
      runs: [3, 4, 9, 1],
    });
    const creditsOnly = P.encodeFrame(P.OP.SETTLE_BATCH, 0, (w) => P.encodeSettleBatch(w, 2, 7, []));
    expect(body(creditsOnly, P.OP.SETTLE_BATCH, P.decodeSettleBatch)).toEqual({
      subscriptionId: 2,
      credits: 7,
      runs: [],
    });
    expect(P.ONE_WAY_OPS.has(P.OP.SETTLE_BATCH)).toBe(true);
  });

  it('FLOW_ENDED: the subscription id, then an ERROR body', () => {
    const f = P.encodeFrame(P.OP.FLOW_ENDED, 0, (w) => P.encodeFlowEnded(w, 1, new WharfError('NOT_FOUND', 'gone')));
    expect(hex(f)).toBe('00000020c2000000000000000100094e4f545f464f554e4400000004676f6e65ffffffff');
    const decoded = body(f, P.OP.FLOW_ENDED, P.decodeFlowEnded);
    expect(decoded.subscriptionId).toBe(1);
    expect(decoded.reason).toMatchObject({ code: 'NOT_FOUND', message: 'gone' });
  });

  it('FLOW_ERROR (version 11): the subscription id, then an ERROR body, as FLOW_ENDED', () => {
    const f = P.encodeFrame(P.OP.FLOW_ERROR, 0, (w) => P.encodeFlowError(w, 1, new WharfError('UNAVAILABLE', 'dlq')));
    expect(hex(f)).toBe('00000021c30000000000000001000b554e415641494c41424c4500000003646c71ffffffff');
    const decoded = body(f, P.OP.FLOW_ERROR, P.decodeFlowError);
    expect(decoded.subscriptionId).toBe(1);
    expect(decoded.error).toMatchObject({ code: 'UNAVAILABLE', message: 'dlq' });
  });

  it('SETTLE_BATCH runs that are empty, start at 0 or pass 0xFFFFFFFF are PROTOCOL_ERROR', () => {
    for (const run of [
      [5, 0],
      [0, 3],
      [0xfffffffe, 3],
    ]) {
      const f = P.encodeFrame(P.OP.SETTLE_BATCH, 0, (w) => P.encodeSettleBatch(w, 1, 0, run));
      expect(() => body(f, P.OP.SETTLE_BATCH, P.decodeSettleBatch)).toThrow(
        expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
      );
    }
    const last = P.encodeFrame(P.OP.SETTLE_BATCH, 0, (w) => P.encodeSettleBatch(w, 1, 0, [0xfffffffe, 2]));
    expect(body(last, P.OP.SETTLE_BATCH, P.decodeSettleBatch).runs).toEqual([0xfffffffe, 2]);
  });

  it('str and lstr carry ASCII, non-ASCII and long strings as UTF-8, byte for byte', () => {
    const samples = [
      '',
      'a',
      'x'.repeat(64),
      'y'.repeat(65),
      'é',
      'naïve-id',
      '日本語',
      'a😀b',
      `${'z'.repeat(63)}é`,
      '\u007f\u0080',
    ];
    for (const s of samples) {
      const w = new P.WireWriter(4);
      w.str(s).lstr(s);
      const utf8 = Buffer.from(s, 'utf8');
      const expected = Buffer.concat([
        Buffer.from([utf8.length >> 8, utf8.length & 0xff]),
        utf8,
        Buffer.from([0, 0, utf8.length >> 8, utf8.length & 0xff]),
        utf8,
      ]);
      expect(hex(w.copyFrom(0))).toBe(hex(expected));
      const r = new P.WireReader().reset(w.buf, 0, w.pos);
      expect([r.str(), r.lstr()]).toEqual([s, s]);
    }
  });

  it('any string survives str and lstr', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 80 })), (s) => {
        const w = new P.WireWriter(8);
        w.str(s).lstr(s);
        const r = new P.WireReader().reset(w.buf, 0, w.pos);
        expect([r.str(), r.lstr()]).toEqual([s, s]);
        r.done();
      }),
      { numRuns: 300 },
    );
  });

  it('repeatedStr reads what str wrote, whatever came before it (repeats, changes, long and empty strings)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom('p-1', 'p-2', '', 'x'.repeat(300), 'é'), fc.string({ maxLength: 300 })), {
          maxLength: 12,
        }),
        (xs) => {
          const w = new P.WireWriter(8);
          for (const s of xs) w.str(s);
          const r = new P.WireReader().reset(w.buf, 0, w.pos);
          expect(xs.map(() => r.repeatedStr())).toEqual(xs);
          r.done();
        },
      ),
      { numRuns: 300 },
    );
  });

  it("i64 carries every safe integer as big-endian two's complement, and refuses the rest", () => {
    const edges = [
      0,
      1,
      -1,
      0xffffffff,
      0x100000000,
      -0x100000000,
      -0x100000001,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
    ];
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...edges), fc.maxSafeInteger()), (v) => {
        const w = new P.WireWriter(2);
        w.i64(v);
        const expected = Buffer.alloc(8);
        expected.writeBigInt64BE(BigInt(v));
        expect(hex(w.copyFrom(0))).toBe(hex(expected));
        expect(new P.WireReader().reset(w.buf, 0, w.pos).i64()).toBe(v);
      }),
      { numRuns: 500 },
    );
    for (const v of [2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)]) {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(v);
      expect(() => new P.WireReader().reset(b).i64()).toThrow(/outside the safe integer range/);
    }
    expect(() => new P.WireWriter().i64(2 ** 53)).toThrow(WharfError);
    expect(() => new P.WireWriter().i64(0.5)).toThrow(WharfError);
  });
  it('take() hands over what was written and leaves the writer empty', () => {
    const w = new P.WireWriter(16);
    for (const n of [3, 20_000]) {
      w.bytes(new Uint8Array(n).fill(7));
      const out = w.take();
      expect(out.length).toBe(4 + n);
      expect(out.readUInt32BE(0)).toBe(n);
      expect(out[4 + n - 1]).toBe(7);
      expect(w.pos).toBe(0);
      w.u8(9); // writing on must not change what was taken
      expect(out[4]).toBe(7);
      w.reset();
    }
  });

  it('DELIVER of a topic message with byte payload', () => {
    const f = P.encodeFrame(P.OP.DELIVER, 0, (w) => {
      P.encodeDeliverHeader(w, 1, 1);
      P.encodeDelivery(
        w,
        { id: 'm1', type: 't', timestamp: 1000, key: null, headers: {}, payload: new Uint8Array([0xab]) },
        { deliveryId: 3, deliveryCount: 1, partition: 2, offset: 7 },
      );
    });
    expect(hex(f)).toBe(
      '0000003cc0000000000000000100010000002d00000003002000026d3100017400000000000003e80000000100000100000001ab000000020000000000000007',
    );
    const d = body(f, P.OP.DELIVER, P.decodeDeliver);
    expect(d.subscriptionId).toBe(1);
    expect(d.deliveries[0]).toMatchObject({ deliveryId: 3, deliveryCount: 1, partition: 2, offset: 7, receipt: '' });
    expect(d.deliveries[0].message).toMatchObject({ id: 'm1', type: 't', timestamp: 1000, key: null, headers: {} });
    expect(Array.from(d.deliveries[0].message.payload as Uint8Array)).toEqual([0xab]);
    expect(d.deliveries[0].assignmentEpoch).toBe(-1); // no grant
  });

  it('DELIVER (version 8) of a group member’s topic message carries its grant’s epoch (mask bit 7)', () => {
    const message = { id: 'm1', type: 't', timestamp: 1000, key: null, headers: {}, payload: new Uint8Array([0xab]) };
    const meta = { deliveryId: 3, deliveryCount: 1, partition: 2, offset: 7, assignmentEpoch: 4 };
    const f = P.encodeFrame(P.OP.DELIVER, 0, (w) => {
      P.encodeDeliverHeader(w, 1, 1);
      P.encodeDelivery(w, message, meta);
    });
    expect(hex(f)).toBe(
      [
        '00000040 c0 00000000  00000001 0001',
        '00000031 00000003 00a0 0002 6d31 0001 74 00000000000003e8 00000001',
        '0000  01 00000001 ab  00000002 0000000000000007  00000004',
      ]
        .join('')
        .replaceAll(' ', ''),
    );
    const d = body(f, P.OP.DELIVER, P.decodeDeliver).deliveries[0];
    expect(d).toMatchObject({ deliveryId: 3, partition: 2, offset: 7, receipt: '', assignmentEpoch: 4 });
  });

  it('RECEIVE and admin name + JSON', () => {
    const r = P.encodeFrame(P.OP.RECEIVE, 4, (w) =>
      P.encodeReceive(w, 'q', { max: 10, waitMs: 500 }, 3, 'ignored before version 4'),
    );
    expect(hex(r)).toBe('0000001440000000040001710000000a000001f400000000');
    expect(body(r, P.OP.RECEIVE, (rd) => P.decodeReceive(rd, 3))).toEqual({
      queue: 'q',
      max: 10,
      waitMs: 500,
      visibilityTimeoutMs: 0,
      attemptId: '',
    });
    // Version 4 adds the attempt id (str).
    const r4 = P.encodeFrame(P.OP.RECEIVE, 4, (w) => P.encodeReceive(w, 'q', { max: 10, waitMs: 500 }, 4, 'a1'));
    expect(hex(r4)).toBe('0000001840000000040001710000000a000001f4000000000002613' + '1');
    expect(body(r4, P.OP.RECEIVE, (rd) => P.decodeReceive(rd, 4))).toEqual({
      queue: 'q',
      max: 10,
      waitMs: 500,
      visibilityTimeoutMs: 0,
      attemptId: 'a1',
    });
    const long = P.encodeFrame(P.OP.RECEIVE, 4, (w) => P.encodeReceive(w, 'q', {}, 4, 'x'.repeat(129)));
    expect(() => body(long, P.OP.RECEIVE, (rd) => P.decodeReceive(rd, 4))).toThrow(/attemptId has 129 characters/);
    const c = P.encodeFrame(P.OP.CREATE_TOPIC, 3, (w) =>
      P.encodeNameOptions(w, { name: 't', options: { partitions: 2 } }),
    );
    expect(hex(c)).toBe('0000001c1000000003000174000000107b22706172746974696f6e73223a327d');
    expect(body(c, P.OP.CREATE_TOPIC, P.decodeNameOptions)).toEqual({ name: 't', options: { partitions: 2 } });
  });

  it('SUBSCRIBE (version 9) carries startOffsets inside its options JSON, partitions as keys', () => {
    const f = P.encodeFrame(P.OP.SUBSCRIBE, 5, (w) =>
      P.encodeSubscribe(w, { name: 't', options: { startOffsets: { 0: 12 } }, credits: 100 }),
    );
    expect(hex(f)).toBe(
      [
        '00000029 30 00000005  0001 74',
        '00000019 7b2273746172744f666673657473223a7b2230223a31327d7d', // {"startOffsets":{"0":12}}
        '00000064',
      ]
        .join('')
        .replaceAll(' ', ''),
    );
    expect(body(f, P.OP.SUBSCRIBE, P.decodeSubscribe)).toEqual({
      name: 't',
      options: { startOffsets: { '0': 12 } },
      credits: 100,
    });
  });

  it('any start offset per partition survives SUBSCRIBE encode/decode exactly (offsets up to 2^53 - 1)', () => {
    const offsets = fc.dictionary(
      fc.integer({ min: 0, max: 1023 }).map(String),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    );
    fc.assert(
      fc.property(offsets, fc.constantFrom('earliest', 'latest'), (startOffsets, from) => {
        const options = { from, startOffsets };
        const f = P.encodeFrame(P.OP.SUBSCRIBE, 1, (w) => P.encodeSubscribe(w, { name: 't', options, credits: 1 }));
        expect(body(f, P.OP.SUBSCRIBE, P.decodeSubscribe).options).toEqual(options);
      }),
    );
  });

  it('TRANSACTION (version 7): acks, publishes and offset commits, each list behind its u16 count', () => {
    const req = {
      acks: [{ queue: 'q', id: 'i', receipt: 'r' }],
      publishes: [{ name: 'o', messages: [{ type: 't' }] }],
      offsets: [{ topic: 't', group: 'g', partition: 1, offset: 2 }],
    };
    const f = P.encodeFrame(P.OP.TRANSACTION, 3, (w) => P.encodeTransaction(w, req, 7));
    // As docs/protocol.md §11 lays it out: prefix, then the acks, the publishes and the offsets.
    const expected = [
      '00000034 50 00000003',
      '0001  0001 71 0001 69 0001 72', // 1 ack: queue q, id i, receipt r
      '0001  0001 6f 0001  00000005 0002 0001 74', // 1 publish to o: 1 record (mask type), type t
      '0001  0001 74 0001 67 00000001 0000000000000002', // 1 offset: topic t, group g, partition 1, offset 2
    ];
    expect(hex(f)).toBe(expected.join('').replaceAll(' ', ''));
    expect(body(f, P.OP.TRANSACTION, (r) => P.decodeTransaction(r, 7))).toEqual({
      ...req,
      publishes: [{ name: 'o', messages: [{ type: 't', key: null }] }],
    });
    const empty = P.encodeFrame(P.OP.TRANSACTION, 4, (w) =>
      P.encodeTransaction(w, { acks: [], publishes: [], offsets: [] }, 7),
    );
    expect(body(empty, P.OP.TRANSACTION, (r) => P.decodeTransaction(r, 7))).toEqual({
      acks: [],
      publishes: [],
      offsets: [],
    });
  });

  it('TRANSACTION (version 8): each offset commit has a flags byte, and a fenced one its grant', () => {
    const req = {
      acks: [],
      publishes: [{ name: 'o', messages: [{ type: 't' }] }],
      offsets: [
        { topic: 't', group: 'g', partition: 1, offset: 2, grant: { memberId: 'm', assignmentEpoch: 3 } },
        { topic: 't', group: 'g', partition: 0, offset: 5 },
      ],
    };
    const f = P.encodeFrame(P.OP.TRANSACTION, 3, (w) => P.encodeTransaction(w, req, 8));
    const expected = [
      '00000046 50 00000003',
      '0000', // no acks
      '0001  0001 6f 0001  00000005 0002 0001 74', // 1 publish to o: 1 record (mask type), type t
      '0002', // 2 offsets
      '0001 74 0001 67 00000001 0000000000000002  01 0001 6d 00000003', // fenced: flags 1, member m, epoch 3
      '0001 74 0001 67 00000000 0000000000000005  00', // administrative: flags 0
    ];
    expect(hex(f)).toBe(expected.join('').replaceAll(' ', ''));
    expect(body(f, P.OP.TRANSACTION, (r) => P.decodeTransaction(r, 8))).toEqual({
      ...req,
      publishes: [{ name: 'o', messages: [{ type: 't', key: null }] }],
    });
    // Unfenced commits still go to a version 7 server, without the flags byte; a fenced one is
    // refused before anything is written rather than sent without its fence.
    const unfenced = { ...req, offsets: [req.offsets[1]] };
    const v7 = P.encodeFrame(P.OP.TRANSACTION, 3, (w) => P.encodeTransaction(w, unfenced, 7));
    expect(body(v7, P.OP.TRANSACTION, (r) => P.decodeTransaction(r, 7)).offsets).toEqual([req.offsets[1]]);
    const w = new P.WireWriter(64);
    expect(() => P.encodeTransaction(w, req, 7)).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_ERROR', message: expect.stringMatching(/version 8/) }),
    );
    // Reserved flag bits are refused, and a grant's fields must all be there.
    const reserved = P.encodeFrame(P.OP.TRANSACTION, 3, (wr) => {
      wr.u16(0).u16(0).u16(1).str('t').str('g').u32(0).u64(1).u8(0x02);
    });
    expect(() => body(reserved, P.OP.TRANSACTION, (r) => P.decodeTransaction(r, 8))).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_ERROR', message: expect.stringMatching(/reserved bits/) }),
    );
    for (let end = 9; end < f.length; end++) {
      expect(() => P.decodeTransaction(new P.WireReader().reset(f, 9, end), 8)).toThrow(
        expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
      );
    }
  });
});

describe('codec properties', () => {
  const str = fc.string({ maxLength: 20 });
  const input = fc.record(
    {
      id: str,
      type: str,
      key: fc.oneof(str, fc.constant(null)),
      headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), str, { maxKeys: 4 }),
      payload: fc.oneof(
        fc.jsonValue() as fc.Arbitrary<JsonValue>,
        fc.uint8Array({ maxLength: 32 }) as fc.Arbitrary<Uint8Array>,
      ),
      priority: fc.nat(9),
      delayMs: fc.nat(),
      groupId: str,
      dedupId: str,
      routingKey: str,
      ttlMs: fc.nat(),
      producerId: str,
      sequence: fc.maxSafeNat(),
      partition: fc.nat(1023),
    },
    { requiredKeys: [] },
  );

  it('any message input survives encode/decode', () => {
    fc.assert(
      fc.property(fc.array(input, { minLength: 1, maxLength: 5 }), (messages) => {
        const f = P.encodeFrame(P.OP.PUBLISH, 1, (w) => P.encodePublish(w, 'target', messages));
        // Decoded and encoded again (a relay), the frame is the same bytes: JSON stays JSON.
        const decoded = body(f, P.OP.PUBLISH, P.decodePublish).messages;
        expect(P.encodeFrame(P.OP.PUBLISH, 1, (w) => P.encodePublish(w, 'target', decoded)).equals(f)).toBe(true);
        const back = body(f, P.OP.PUBLISH, P.decodePublish).messages.map((m) => {
          const e: Record<string, unknown> = { ...m };
          if (m.payload instanceof JsonText) e.payload = JSON.parse(Buffer.from(m.payload).toString('utf8')) as unknown;
          else if (m.payload instanceof Uint8Array) e.payload = Array.from(m.payload);
          return e;
        });
        const expected = messages.map((m) => {
          const e: Record<string, unknown> = { ...m, key: m.key ?? null };
          if (m.payload instanceof Uint8Array) e.payload = Array.from(m.payload);
          else if (m.payload !== undefined) e.payload = JSON.parse(JSON.stringify(m.payload)) as unknown;
          return e;
        });
        expect(back).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('every strict prefix of a frame body is rejected as PROTOCOL_ERROR, never misread', () => {
    const f = P.encodeFrame(P.OP.PUBLISH, 2, (w) =>
      P.encodePublish(w, 'q', [{ key: 'k', headers: { a: 'b' }, payload: { a: 1 }, priority: 3 }], 'p', 5),
    );
    for (let end = 9; end < f.length; end++) {
      expect(() => P.decodePublish(new P.WireReader().reset(f, 9, end))).toThrow(
        expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
      );
    }
  });
});

describe('message fields carried as u32', () => {
  it('a priority or partition above 2^32 - 1 is refused when encoded, not wrapped', () => {
    for (const field of ['priority', 'partition'] as const) {
      const w = new P.WireWriter(256);
      expect(() => P.encodePublish(w, 'q', [{ payload: 1, [field]: 2 ** 32 + 5 }])).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      expect(() => P.encodePublish(new P.WireWriter(256), 'q', [{ payload: 1, [field]: 2 ** 32 - 1 }])).not.toThrow();
    }
  });
});

describe('fixed-width integers', () => {
  it('a number that does not fit its field (a fraction, out of range, NaN) is refused, not wrapped or truncated', () => {
    const cases: Array<[keyof P.WireWriter & ('u8' | 'u16' | 'u32' | 'i32'), number, number]> = [
      ['u8', 0, 255],
      ['u16', 0, 65_535],
      ['u32', 0, 2 ** 32 - 1],
      ['i32', -(2 ** 31), 2 ** 31 - 1],
    ];
    for (const [width, min, max] of cases) {
      for (const v of [min - 1, max + 1, 1.5, Number.NaN, Infinity]) {
        expect(() => new P.WireWriter(16)[width](v), `${width}(${v})`).toThrow(
          expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
        );
      }
      const w = new P.WireWriter(16);
      w[width](min)[width](max);
      expect(w.pos).toBeGreaterThan(0);
    }
    const w = new P.WireWriter(16);
    const at = w.reserveU32();
    expect(() => w.patchU32(at, 2 ** 32)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a RECEIVE whose max does not fit its u32 is refused when encoded', () => {
    for (const max of [2 ** 32 + 1, 1.5]) {
      expect(() => P.encodeReceive(new P.WireWriter(64), 'q', { max }, P.MIN_PROTOCOL_VERSION)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('FrameDecoder', () => {
  it('reassembles frames split at every byte boundary and across chunks', () => {
    const a = P.encodeFrame(P.OP.PING, 1);
    const b = P.encodeFrame(P.OP.CREDIT, 0, (w) => P.encodeCredit(w, 1, 100));
    const stream = Buffer.concat([a, b, a]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const seen: Array<[number, number, number]> = [];
      const d = new P.FrameDecoder(1024, (op, id, _buf, start, end) => seen.push([op, id, end - start]));
      d.push(stream.subarray(0, cut));
      d.push(stream.subarray(cut));
      expect(seen).toEqual([
        [P.OP.PING, 1, 0],
        [P.OP.CREDIT, 0, 8],
        [P.OP.PING, 1, 0],
      ]);
      expect(d.bufferedBytes).toBe(0);
    }
  });

  it('assembles a large frame from many small chunks', () => {
    const payload = Buffer.alloc(100_000, 7);
    const f = P.encodeFrame(P.OP.PUBLISH, 3, (w) => P.encodePublish(w, 'q', [{ payload }]));
    const bodies: number[] = [];
    const d = new P.FrameDecoder(1 << 20, (_op, _id, _buf, start, end) => bodies.push(end - start));
    for (let i = 0; i < f.length; i += 1000) d.push(f.subarray(i, i + 1000));
    expect(bodies).toEqual([f.length - 9]);
    expect(d.bufferedBytes).toBe(0);
  });

  it.each([false, true])('reassembles any stream cut into any chunks (property; chunks copied: %s)', (copyChunks) => {
    const frame = fc.record({
      op: fc.integer({ min: 0, max: 255 }),
      id: fc.nat(),
      body: fc.uint8Array({ maxLength: 3000 }),
    });
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 12 }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 40 }),
        (frames, cuts) => {
          const encoded = frames.map((f) => P.encodeFrame(f.op, f.id, (w) => w.bytes(f.body)));
          const stream = Buffer.concat(encoded);
          const seen: Array<{ op: number; id: number; body: Uint8Array }> = [];
          const d = new P.FrameDecoder(
            1 << 20,
            (op, id, buf, start, end) => seen.push({ op, id, body: new Uint8Array(buf.subarray(start, end)) }),
            copyChunks,
          );
          // A decoder that copies chunks gets each in one read buffer, overwritten after every push
          // (as the client's socket reads): nothing it holds may still point into it.
          const readBuffer = Buffer.alloc(stream.length);
          const push = (bytes: Buffer): void => {
            if (!copyChunks) return d.push(bytes);
            bytes.copy(readBuffer);
            d.push(readBuffer.subarray(0, bytes.length));
            readBuffer.fill(0xee);
          };
          let at = 0;
          for (const cut of cuts) {
            if (at >= stream.length) break;
            push(stream.subarray(at, at + cut));
            at += cut;
          }
          if (at < stream.length) push(stream.subarray(at));
          expect(seen).toEqual(
            frames.map((f, i) => ({
              op: f.op,
              id: f.id,
              body: new Uint8Array(encoded[i].subarray(P.FRAME_PREFIX_BYTES)),
            })),
          );
          expect(d.bufferedBytes).toBe(0);
        },
      ),
    );
  });

  it('joins only a straddling frame: the frames after it in the chunk are read from the chunk itself', () => {
    const a = P.encodeFrame(P.OP.CREDIT, 1, (w) => P.encodeCredit(w, 1, 100));
    const b = P.encodeFrame(P.OP.PING, 2);
    const stream = Buffer.concat([a, b, b]);
    const second = stream.subarray(6); // the first chunk ends inside a's body
    const sources: Buffer[] = [];
    const d = new P.FrameDecoder(1024, (_op, _id, buf) => sources.push(buf));
    d.push(stream.subarray(0, 6));
    d.push(second);
    expect(sources).toHaveLength(3);
    expect(sources[0]).not.toBe(second); // a, joined from both chunks
    expect(sources[1]).toBe(second);
    expect(sources[2]).toBe(second);
  });

  it('joins straddling frames in one reused buffer only when asked to (the client), growing it as frames need', () => {
    const frameOf = (fill: number, bytes: number): Buffer =>
      P.encodeFrame(P.OP.DELIVER, 0, (w) => w.bytes(Buffer.alloc(bytes, fill)));
    // Three frames, each cut in two: the second larger than the join buffer's first size.
    const frames = [frameOf(1, 1000), frameOf(2, 600_000), frameOf(3, 1000)];
    for (const reuse of [false, true]) {
      const bodies: Buffer[] = [];
      const copies: Buffer[] = [];
      const d = new P.FrameDecoder(
        1 << 20,
        (_op, _id, buf, start, end) => {
          bodies.push(buf.subarray(start, end));
          copies.push(Buffer.from(buf.subarray(start, end)));
        },
        reuse,
      );
      for (const f of frames) {
        d.push(f.subarray(0, 100));
        d.push(f.subarray(100));
      }
      expect(copies.map((c) => [c.length, c[c.length - 1]])).toEqual([
        [1004, 1],
        [600_004, 2],
        [1004, 3],
      ]);
      const memory = bodies.map((b) => b.buffer);
      if (reuse) {
        // The buffer grew for the large frame and was kept: the third frame reused it, so the first
        // frame's view no longer holds the first frame (a handler copies what it keeps).
        expect(memory[2]).toBe(memory[1]);
        expect(bodies[1][bodies[1].length - 1]).toBe(2); // past the third frame's bytes: untouched
        expect(bodies[1][bodies[2].length - 1]).toBe(3);
      } else {
        // Each joined frame's bytes are its own (the server keeps views of published payloads).
        expect(bodies.map((b, i) => b.equals(copies[i]))).toEqual([true, true, true]);
      }
    }
  });

  it('refuses a frame over maxFrameBytes from its length alone', () => {
    const d = new P.FrameDecoder(64, () => undefined);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1_000_000);
    expect(() => d.push(header)).toThrow(expect.objectContaining({ code: 'LIMIT_EXCEEDED' }));
  });

  it('refuses a length below the frame header', () => {
    const d = new P.FrameDecoder(64, () => undefined);
    expect(() => d.push(Buffer.from('0000000201ff', 'hex'))).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
    );
  });

  it('checks a length split across chunks after a frame, before buffering what follows it', () => {
    const ping = P.encodeFrame(P.OP.PING, 1);
    const oversize = Buffer.alloc(4);
    oversize.writeUInt32BE(1_000_000);
    const tooSmall = Buffer.from('00000002', 'hex');
    for (const [length, code] of [
      [oversize, 'LIMIT_EXCEEDED'],
      [tooSmall, 'PROTOCOL_ERROR'],
    ] as const) {
      for (const cuts of [[1], [2], [3], [1, 2], [1, 1, 1]]) {
        const d = new P.FrameDecoder(64, () => undefined);
        const pieces: Buffer[] = [];
        let at = 0;
        for (const c of cuts) {
          pieces.push(length.subarray(at, at + c));
          at += c;
        }
        d.push(Buffer.concat([ping, pieces[0]])); // a whole frame, then the first bytes of the next length
        for (const piece of pieces.slice(1)) d.push(piece);
        expect(d.bufferedBytes).toBe(at);
        expect(() => d.push(Buffer.concat([length.subarray(at), Buffer.alloc(100_000)]))).toThrow(
          expect.objectContaining({ code }),
        );
      }
    }
  });
});
