// A remote topic subscription is told what its server-side subscription reports and retries (a
// batch it cannot read: CORRUPT_DATA), as an embedded one is through onError: the server sends it
// as FLOW_ERROR (protocol version 11) and the client hands it to the subscribe option onError.
// Before, the client's onError was dropped by JSON and the subscription just stalled.
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { PartitionFetcher } from '../../src/broker/topics/partition-fetcher.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { WharfError } from '../../src/common/index.js';
import * as P from '../../src/protocol/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { waitFor } from '../broker/topics-helpers.js';
import { RawClient } from '../protocol/raw-client.js';

let broker: Broker;
let server: NativeServer;
let client: RemoteWharf;
let unreadable = true;

beforeEach(async () => {
  unreadable = true;
  broker = await Broker.open({ inMemory: true });
  await broker.createTopic('t');
  await broker.publish('t', { payload: 'first' });
  // The fetcher's read of the partition's log: what a corrupt batch fails.
  const fetcher = PartitionFetcher.prototype as unknown as { read: (...args: unknown[]) => Promise<unknown> };
  const real = fetcher.read;
  vi.spyOn(fetcher, 'read').mockImplementation(function (this: unknown, ...args: unknown[]) {
    if (unreadable) return Promise.reject(new WharfError('CORRUPT_DATA', 'segment 0 of t: bad CRC'));
    return real.apply(this, args);
  });
  server = await startNativeServer(broker, { port: 0 });
  client = await connect(`wharf://127.0.0.1:${server.address().port}`);
});
afterEach(async () => {
  vi.restoreAllMocks();
  await client.close();
  await server.close();
  await broker.close();
});

it('hands a batch the server cannot read (CORRUPT_DATA) to onError, and delivers once it reads', async () => {
  const errors: WharfError[] = [];
  const seen: unknown[] = [];
  const sub = await client.subscribe('t', { from: 'earliest', onError: (err) => errors.push(err) }, (m) => {
    seen.push(m.payload);
  });
  await waitFor(() => errors.length > 0, 'a reported error');
  expect(errors[0]).toBeInstanceOf(WharfError);
  expect(errors[0]).toMatchObject({ code: 'CORRUPT_DATA', message: 'segment 0 of t: bad CRC' });
  expect(seen).toEqual([]);
  unreadable = false;
  await waitFor(() => seen.length === 1, 'the message');
  expect(seen).toEqual(['first']);
  await sub.close();
});

it('onError is refused when it is not a function, by the client, and by the server when a value is sent for it', async () => {
  await expect(
    client.subscribe('t', { onError: 'log' as unknown as () => void }, () => undefined),
  ).rejects.toMatchObject({
    code: 'INVALID_ARGUMENT',
    message: 'subscribe onError must be a function (err: WharfError) => void',
  });
  const raw = await RawClient.open(server.address().port, true, P.PROTOCOL_VERSION);
  try {
    raw.send(
      P.encodeFrame(P.OP.SUBSCRIBE, 2, (w) =>
        P.encodeSubscribe(w, { name: 't', options: { onError: 'log' }, credits: 4 }),
      ),
    );
    const answer = await raw.next();
    expect(answer?.op).toBe(P.OP.ERROR);
    expect(P.decodeError(new P.WireReader().reset(answer!.body)).code).toBe('INVALID_ARGUMENT');
  } finally {
    raw.close();
  }
});
