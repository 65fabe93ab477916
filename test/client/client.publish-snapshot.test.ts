// publish() takes a message as it is when called, remote as embedded: the caller may reuse the
// object, its headers or its payload's bytes as soon as publish() returns.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker, type MessageInput } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';

describe('publish takes the message as it is when called', () => {
  let broker: Broker;
  let server: NativeServer;
  let client: RemoteWharf;
  afterEach(async () => {
    await client.close();
    await server.close();
    await broker.close();
  });

  it('calls are stored in the order they were made: a batch publish does not overtake single publishes still waiting for the end of the tick', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    server = await startNativeServer(broker, { port: 0 });
    client = await connect(`wharf://127.0.0.1:${server.address().port}`);
    await Promise.all([
      client.publish('q', { payload: 1 }),
      client.publish('q', { payload: 2 }),
      client.publish('q', [{ payload: 3 }, { payload: 4 }]),
      client.publish('q', { payload: 5 }),
    ]);
    expect((await broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([1, 2, 3, 4, 5]);
  });

  it('a message object reused for the next publish is stored as each call saw it: payload, headers and bytes', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    server = await startNativeServer(broker, { port: 0 });
    client = await connect(`wharf://127.0.0.1:${server.address().port}`);
    const m: MessageInput = { payload: { n: 0 }, headers: { h: 'a' } };
    const sent: Array<Promise<unknown>> = [];
    for (let n = 0; n < 3; n++) {
      (m.payload as { n: number }).n = n;
      m.headers!.h = `h${n}`;
      sent.push(client.publish('q', m)); // all three wait in one batch until the end of the tick
    }
    await Promise.all(sent);
    const bytes = new Uint8Array([1, 2, 3]);
    const buffer = Buffer.from('abc'); // a Buffer's slice() is a view, not a copy
    const batch = client.publish('q', [{ payload: bytes }]);
    bytes[0] = 9;
    await batch;
    const single = client.publish('q', { payload: buffer }); // waits in its batch until the end of the tick
    buffer[0] = 0x78;
    await single;
    const got = await broker.receive('q', { max: 10 });
    expect(got.map((x) => x.payload)).toEqual([
      { n: 0 },
      { n: 1 },
      { n: 2 },
      new Uint8Array([1, 2, 3]),
      new Uint8Array(Buffer.from('abc')),
    ]);
    expect(got.slice(0, 3).map((x) => x.headers.h)).toEqual(['h0', 'h1', 'h2']);
  });

  it('a message the encoder refuses fails its own publish at once; the others of its tick are stored, and a batch publish holding one stores nothing', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    server = await startNativeServer(broker, { port: 0 });
    client = await connect(`wharf://127.0.0.1:${server.address().port}`);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const first = client.publish('q', { payload: 1 });
    const refused = client.publish('q', { payload: cyclic as never });
    const last = client.publish('q', { payload: 3 });
    await expect(refused).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('JSON') as unknown,
    });
    await Promise.all([first, last]);
    await expect(client.publish('q', [{ payload: 4 }, { payload: 10n as unknown as number }])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect((await broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([1, 3]);
  });

  it('a message the client cannot encode, sent to a name that does not exist, is INVALID_ARGUMENT remotely and NOT_FOUND embedded (docs/protocol.md §4); a valid one is NOT_FOUND on both', async () => {
    broker = await Broker.open({ inMemory: true });
    server = await startNativeServer(broker, { port: 0 });
    client = await connect(`wharf://127.0.0.1:${server.address().port}`);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(client.publish('missing', { payload: cyclic as never })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(broker.publish('missing', { payload: cyclic as never })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(client.publish('missing', { payload: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(broker.publish('missing', { payload: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it("a publish from inside the caller's own code while its message is encoded (a toJSON) goes in a frame of its own: both are stored, each once", async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    server = await startNativeServer(broker, { port: 0 });
    client = await connect(`wharf://127.0.0.1:${server.address().port}`);
    let inner: Promise<unknown> | null = null;
    let innerBatch: Promise<unknown> | null = null;
    const payload = {
      toJSON(): string {
        inner ??= client.publish('q', { payload: 'inner' });
        innerBatch ??= client.publish('q', [{ payload: 'inner batch' }]);
        return 'outer';
      },
    };
    const before = client.publish('q', { payload: 'before' });
    const outer = client.publish('q', { payload: payload as never });
    await Promise.all([before, outer, inner, innerBatch]);
    const got = (await broker.receive('q', { max: 10 })).map((m) => m.payload);
    expect([...got].sort()).toEqual(['before', 'inner', 'inner batch', 'outer']);
    const ids = new Set(
      [await before, await outer, await inner!, await innerBatch!].flat().map((r) => (r as { id: string }).id),
    );
    expect(ids.size).toBe(4); // four messages, four sequences: none taken for a duplicate
  });
});
