// Native server limits: a client over a limit gets a clear error; other clients are unaffected.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker, type QueueStats } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';
import * as P from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { connect } from '../../src/client/index.js';
import { until } from '../client/frame-proxy.js';
import { RawClient } from './raw-client.js';

let broker: Broker | null = null;
let server: NativeServer | null = null;

afterEach(async () => {
  await server?.close();
  await broker?.close();
  server = null;
  broker = null;
});

async function start(options: Parameters<typeof startNativeServer>[1]): Promise<number> {
  broker = await Broker.open({ inMemory: true });
  server = await startNativeServer(broker, { port: 0, ...options });
  return server.address().port;
}

describe('native server limits', () => {
  it('maxConnections: one connection too many is refused with LIMIT_EXCEEDED', async () => {
    const port = await start({ maxConnections: 1 });
    const first = await RawClient.open(port);
    const second = await RawClient.open(port, false);
    const f = (await second.next())!;
    expect(second.error(f).code).toBe('LIMIT_EXCEEDED');
    await second.closedPromise;
    first.send(P.encodeFrame(P.OP.PING, 2));
    expect((await first.next())?.op).toBe(P.OP.PONG);
    expect(server!.counters.connectionsRejected).toBe(1);
    await expect(connect(`wharf://127.0.0.1:${port}`)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    first.close();
    for (let i = 0; i < 200 && server!.counters.connectionsOpen > 0; i++) await new Promise((r) => setTimeout(r, 5));
    await expect(
      connect(`wharf://127.0.0.1:${port}`, { reconnectTimeoutMs: 100 }).then((c) => c.close()),
    ).resolves.toBeUndefined();
  });

  it('maxInFlightRequests: a request beyond the window is refused, earlier ones still complete', async () => {
    const port = await start({ maxInFlightRequests: 1 });
    await broker!.createQueue('q');
    const c = await RawClient.open(port);
    c.send(P.encodeFrame(P.OP.RECEIVE, 10, (w) => P.encodeReceive(w, 'q', { max: 1, waitMs: 2_000 }, 1)));
    c.send(P.encodeFrame(P.OP.RECEIVE, 11, (w) => P.encodeReceive(w, 'q', { max: 1, waitMs: 0 }, 1)));
    const refused = (await c.next())!;
    expect([refused.correlationId, c.error(refused).code]).toEqual([11, 'LIMIT_EXCEEDED']);
    await broker!.publish('q', { payload: 'x' });
    const answered = (await c.next())!;
    expect([answered.op, answered.correlationId]).toEqual([P.OP.RECEIVED, 10]);
    c.close();
  });

  it('the client never exceeds the window the server announced', async () => {
    const port = await start({ maxInFlightRequests: 2 });
    await broker!.createQueue('q');
    const client = await connect(`wharf://127.0.0.1:${port}`);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.publish('q', { payload: i })));
    expect(results).toHaveLength(20);
    expect(((await client.stats('q')) as { depth: number }).depth).toBe(20);
    await client.close();
  });

  it('idleTimeoutMs: a silent connection is closed with TIMEOUT', async () => {
    const clock = new ManualClock();
    const port = await start({ idleTimeoutMs: 1_000, clock });
    const c = await RawClient.open(port);
    clock.advance(999);
    c.send(P.encodeFrame(P.OP.PING, 2));
    expect((await c.next())?.op).toBe(P.OP.PONG);
    clock.advance(1_001);
    const f = (await c.next())!;
    expect([f.correlationId, c.error(f).code]).toEqual([0, 'TIMEOUT']);
    await c.closedPromise;
  });

  it('idleTimeoutMs: a connection silent with a request in flight is closed too', async () => {
    const clock = new ManualClock();
    const port = await start({ idleTimeoutMs: 1_000, clock });
    await broker!.createQueue('full', { maxLength: 1, overflow: 'block', blockTimeoutMs: 60_000 });
    await broker!.publish('full', { payload: 'fills it' });
    const c = await RawClient.open(port);
    // Waits for room that never comes; then the client says nothing more (it is gone).
    c.send(P.encodeFrame(P.OP.PUBLISH, 2, (w) => P.encodePublish(w, 'full', [{ payload: 'waits' }])));
    await until(() => server!.counters.framesIn === 2, 'the PUBLISH to reach the server'); // after HELLO
    clock.advance(1_000);
    const f = (await c.next())!;
    expect([f.correlationId, c.error(f).code]).toEqual([0, 'TIMEOUT']);
    await c.closedPromise;
  });

  it('a client whose version is unsupported is told so', async () => {
    const port = await start({});
    const c = await RawClient.open(port, false);
    c.send(
      P.encodeFrame(P.OP.HELLO, 1, (w) =>
        P.encodeHello(w, {
          minVersion: P.PROTOCOL_VERSION + 1,
          maxVersion: P.PROTOCOL_VERSION + 4,
          clientName: 'future',
        }),
      ),
    );
    const f = (await c.next())!;
    const e = c.error(f);
    expect(e.code).toBe('PROTOCOL_ERROR');
    expect(e.message).toContain('no common protocol version');
  });

  it('a one-way op of a later version ends a connection that negotiated an older one, as a malformed one-way frame does', async () => {
    const port = await start({});
    const c = await RawClient.open(port); // versions 1..1
    c.send(P.encodeFrame(P.OP.SETTLE_BATCH, 0, (w) => P.encodeSettleBatch(w, 1, 5, [1, 1])));
    const f = (await c.next())!;
    expect([f.op, f.correlationId]).toEqual([P.OP.ERROR, 0]);
    expect(c.error(f)).toMatchObject({
      code: 'PROTOCOL_ERROR',
      message: expect.stringContaining('needs protocol version 2; this connection negotiated 1'),
    });
    expect(await c.next()).toBeNull(); // closed
    // Other connections are unaffected.
    const other = await RawClient.open(port);
    other.send(P.encodeFrame(P.OP.PING, 1));
    expect((await other.next())!.op).toBe(P.OP.PONG);
    other.close();
  });

  it('maxProtocolVersion caps the version offered at HELLO, and is validated', async () => {
    const port = await start({ maxProtocolVersion: 1 });
    const c = await RawClient.open(port, false);
    c.send(
      P.encodeFrame(P.OP.HELLO, 1, (w) =>
        P.encodeHello(w, { minVersion: 1, maxVersion: P.PROTOCOL_VERSION, clientName: 'new' }),
      ),
    );
    const f = (await c.next())!;
    expect(f.op).toBe(P.OP.HELLO_OK);
    expect(P.decodeHelloOk(new P.WireReader().reset(f.body)).version).toBe(1);
    c.close();
    await expect(
      startNativeServer(broker!, { port: 0, maxProtocolVersion: P.PROTOCOL_VERSION + 1 }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(startNativeServer(broker!, { port: 0, maxProtocolVersion: 0 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('limits set past what HELLO_OK carries ("unlimited": Number.MAX_SAFE_INTEGER) are offered as the u32 ceiling; clients connect', async () => {
    const port = await start({ maxInFlightRequests: Number.MAX_SAFE_INTEGER, maxFrameBytes: Number.MAX_SAFE_INTEGER });
    const c = await RawClient.open(port, false);
    c.send(
      P.encodeFrame(P.OP.HELLO, 1, (w) =>
        P.encodeHello(w, { minVersion: 1, maxVersion: P.PROTOCOL_VERSION, clientName: 'c' }),
      ),
    );
    const f = (await c.next())!;
    c.close();
    expect(f.op).toBe(P.OP.HELLO_OK);
    expect(P.decodeHelloOk(new P.WireReader().reset(f.body))).toMatchObject({
      maxFrameBytes: 0xffffffff,
      maxInFlight: 0xffffffff,
    });
    const client = await connect(`wharf://127.0.0.1:${port}`);
    await client.createQueue('unlimited');
    expect((await client.stats('unlimited')).kind).toBe('queue');
    await client.close();
  });

  it('idleTimeoutMs past the longest timer (2^31 - 1 ms) is refused at start, not left to fire at once', async () => {
    broker = await Broker.open({ inMemory: true });
    await expect(startNativeServer(broker, { port: 0, idleTimeoutMs: 2 ** 31 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('a repeated sequence is flagged in PUBLISH_OK (bit 1) only on a connection of version 4 or later', async () => {
    const port = await start({});
    await broker!.createQueue('q');
    await broker!.publish('q', { producerId: 'p', sequence: 0, payload: 'x' });
    const flagsOfRepeat = async (version: number): Promise<number> => {
      const c = await RawClient.open(port, true, version);
      c.send(P.encodeFrame(P.OP.PUBLISH, 7, (w) => P.encodePublish(w, 'q', [{ payload: 'x' }], 'p', 0)));
      const f = (await c.next())!;
      c.close();
      expect(f.op).toBe(P.OP.PUBLISH_OK);
      return f.body[2]; // count:u16, then the first result's flags
    };
    expect(await flagsOfRepeat(3)).toBe(0x01);
    expect(await flagsOfRepeat(4)).toBe(0x03);
  });

  describe('maxResponseFrameBytes: deliveries are split across frames by bytes', () => {
    const MIB = 1024 * 1024;
    const MB = new Uint8Array(1_000_000).fill(7);
    const frameBytes = (f: { body: Buffer }): number => f.body.length + 9;

    it('a receive of 40 messages of 1 MB each resolves with all 40 over one connection, as embedded', async () => {
      const port = await start({});
      await broker!.createQueue('q');
      for (let i = 0; i < 40; i++) await broker!.publish('q', { payload: MB });
      const client = await connect(`wharf://127.0.0.1:${port}`, { reconnectTimeoutMs: 3_000 });
      const got = await client.receive('q', { max: 40 });
      await client.close();
      expect(got).toHaveLength(40);
      expect(server!.counters.connectionsTotal).toBe(1);
    });

    it('a RECEIVE answers what fits in one frame; the messages left out stay ready, their delivery not counted', async () => {
      const port = await start({ maxResponseFrameBytes: MIB });
      await broker!.createQueue('q', { maxDeliveries: 1 });
      for (let i = 0; i < 5; i++) await broker!.publish('q', { payload: MB });
      const c = await RawClient.open(port, true, 4);
      c.send(P.encodeFrame(P.OP.RECEIVE, 2, (w) => P.encodeReceive(w, 'q', { max: 5, waitMs: 0 }, 4)));
      const f = (await c.next())!;
      expect(f.op).toBe(P.OP.RECEIVED);
      expect(P.decodeReceived(new P.WireReader().reset(f.body))).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 50));
      const q = (await broker!.stats('q')) as QueueStats;
      expect([q.depth, q.inFlight]).toEqual([4, 1]);
      const rest = await broker!.receive('q', { max: 10 });
      expect(rest.map((m) => m.deliveryCount)).toEqual([1, 1, 1, 1]);
      c.close();
    });

    it('a consumer granted many credits gets large messages in DELIVER frames of at most the limit, one delivery alone may pass it', async () => {
      const port = await start({ maxResponseFrameBytes: MIB });
      await broker!.createQueue('q', { maxMessageBytes: 4 * 1024 * 1024 });
      const third = new Uint8Array(300_000).fill(1);
      for (let i = 0; i < 20; i++) await broker!.publish('q', { payload: third });
      await broker!.publish('q', { payload: new Uint8Array(2_000_000).fill(2) });
      const c = await RawClient.open(port, true, 4);
      c.send(P.encodeFrame(P.OP.CONSUME, 2, (w) => P.encodeSubscribe(w, { name: 'q', options: {}, credits: 1000 })));
      const counts: number[] = [];
      while (counts.reduce((a, b) => a + b, 0) < 21) {
        const f = (await c.next())!;
        if (f.op !== P.OP.DELIVER) continue;
        const n = P.decodeDeliver(new P.WireReader().reset(f.body)).deliveries.length;
        if (n > 1) expect(frameBytes(f)).toBeLessThanOrEqual(MIB);
        counts.push(n);
      }
      expect(counts).toContain(1); // the 2 MB message, alone in its frame
      expect(Math.max(...counts)).toBeLessThanOrEqual(3); // 300 KB each: a fourth would pass 1 MiB
      c.close();
    });

    it('maxResponseFrameBytes is at most what every client accepts', async () => {
      await start({});
      await expect(startNativeServer(broker!, { port: 0, maxResponseFrameBytes: 65 * MIB })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    });

    it('a remote consumer with many credits handles every large message over one connection', async () => {
      const port = await start({});
      await broker!.createQueue('q');
      for (let i = 0; i < 40; i++) await broker!.publish('q', { payload: MB });
      const client = await connect(`wharf://127.0.0.1:${port}`, { reconnectTimeoutMs: 3_000 });
      let handled = 0;
      const done = new Promise<void>((resolve) => {
        void client.consume('q', { concurrency: 100 }, () => {
          if (++handled === 40) resolve();
        });
      });
      await done;
      await client.close();
      expect(server!.counters.connectionsTotal).toBe(1);
    });
  });
});
