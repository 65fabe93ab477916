// A remote consumer whose handled message's ack fails on the server (the queue's journal write
// fails) is told, as an embedded one is: the server's consumer reports it, and the client gets it
// as FLOW_ERROR and hands it to the consume option onError.
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { Broker, type QueueStats } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { ManualClock, WharfError } from '../../src/common/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { MemoryJournal } from '../../src/storage/index.js';
import { waitFor } from '../broker/topics-helpers.js';

let broker: Broker;
let server: NativeServer | null = null;
let client: RemoteWharf | null = null;
/** Journal appends that fail from now on: armed by the handler, after its delivery is durable. */
let failNextAppends = 0;
const failure = new WharfError('UNAVAILABLE', 'journal disk failed');

beforeEach(async () => {
  failNextAppends = 0;
  broker = await Broker.open({ inMemory: true, clock: new ManualClock() });
  const real = MemoryJournal.prototype.append;
  vi.spyOn(MemoryJournal.prototype, 'append').mockImplementation(function (this: MemoryJournal, entry: Uint8Array) {
    if (failNextAppends > 0) {
      failNextAppends--;
      return Promise.reject(failure);
    }
    return real.call(this, entry);
  });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await client?.close();
  await server?.close();
  await broker.close();
  client = null;
  server = null;
});

it('hands the failed ack of a handled message to onError (FLOW_ERROR), and the consumer goes on', async () => {
  await broker.createQueue('q');
  server = await startNativeServer(broker, { port: 0 });
  client = await connect(`wharf://127.0.0.1:${server.address().port}`);
  const errors: WharfError[] = [];
  const seen: unknown[] = [];
  const consumer = await client.consume('q', { onError: (err) => errors.push(err) }, (m) => {
    seen.push(m.payload);
    if (m.payload === 'a') failNextAppends = 1; // the server's ack of 'a' is the next journal write
  });
  await broker.publish('q', { payload: 'a' });
  await waitFor(() => errors.length === 1, 'the failed ack told to the client');
  expect(errors[0]).toBeInstanceOf(WharfError);
  expect(errors[0]).toMatchObject({ code: 'UNAVAILABLE', message: 'journal disk failed' });
  expect((await broker.stats('q')) as QueueStats).toMatchObject({ depth: 0, inFlight: 0 });
  await broker.publish('q', { payload: 'b' });
  await waitFor(() => seen.length === 2, 'the next message');
  expect(seen).toEqual(['a', 'b']);
  expect(errors).toHaveLength(1);
  await consumer.close();
});
