// A remote consumer whose handled message's ack fails on the server (the queue's journal write
// fails) is told, as an embedded one is: the server's consumer reports it, and the client gets it
// as FLOW_ERROR and hands it to the consume option onError. With ackMode 'auto' the server acks
// each message itself before sending it: one whose ack failed is not sent, and the client is told.
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { type Broker, type QueueStats, type Wharf } from '../../src/broker/index.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { ManualClock, WharfError } from '../../src/common/index.js';
import { MemoryJournal } from '../../src/storage/index.js';
import { waitFor } from '../broker/topics-helpers.js';
import { servedBroker, withoutReceipts } from '../protocol/served-broker.js';

const rig = servedBroker(async (b) => {
  await b.createQueue('q');
});
/** Journal appends that fail from now on: armed by the handler, after its delivery is durable. */
let failNextAppends = 0;
const failure = new WharfError('UNAVAILABLE', 'journal disk failed');

beforeEach(() => {
  failNextAppends = 0;
  const real = MemoryJournal.prototype.append;
  vi.spyOn(MemoryJournal.prototype, 'append').mockImplementation(function (this: MemoryJournal, entry: Uint8Array) {
    if (failNextAppends > 0) {
      failNextAppends--;
      return Promise.reject(failure);
    }
    return real.call(this, entry);
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

it('hands the failed ack of a handled message to onError (FLOW_ERROR), and the consumer goes on', async () => {
  const { url } = await rig.start({ clock: new ManualClock() });
  const broker = rig.broker!;
  const client = await rig.client(url);
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

// Served as is (deliveries as stored, acked by lease), and behind a Wharf that settles by promise.
it.each([
  ['the Broker', (b: Broker): Wharf => b],
  ['a Wharf that settles by promise', withoutReceipts],
])(
  "ackMode 'auto' behind %s: a message whose ack failed on the server is not sent, and onError hears it (FLOW_ERROR)",
  async (_, served) => {
    const { url } = await rig.start({ clock: new ManualClock(), wharf: served });
    const broker = rig.broker!;
    await broker.publish('q', { payload: 'a' });
    // Once the first take is durable, the next journal write is the server's ack of 'a'.
    let armed = false;
    const realTake = QueueEngine.prototype.take;
    vi.spyOn(QueueEngine.prototype, 'take').mockImplementation(async function (
      this: QueueEngine,
      ...args: Parameters<QueueEngine['take']>
    ) {
      const out = await realTake.apply(this, args);
      if (out.length > 0 && !armed) {
        armed = true;
        failNextAppends = 1;
      }
      return out;
    });
    const client = await rig.client(url);
    const errors: WharfError[] = [];
    const seen: unknown[] = [];
    const consumer = await client.consume(
      'q',
      { ackMode: 'auto', onError: (err) => errors.push(err) },
      (m) => void seen.push(m.payload),
    );
    await waitFor(() => errors.length === 1, 'the failed auto ack told to the client');
    expect(armed).toBe(true);
    expect(errors[0]).toBeInstanceOf(WharfError);
    expect(errors[0]).toMatchObject({ code: 'UNAVAILABLE', message: 'journal disk failed' });
    // As embedded: acked in memory (at most once), never handed to the handler, nothing redelivered.
    expect((await broker.stats('q')) as QueueStats).toMatchObject({ depth: 0, inFlight: 0 });
    await broker.publish('q', { payload: 'b' });
    await waitFor(() => seen.length === 1, 'the next message');
    expect(seen).toEqual(['b']);
    expect(errors).toHaveLength(1);
    await consumer.close();
  },
);
