// A remote consumer of a queue whose receives fail on the server (its dead-letter queue cannot take
// an expired message, so every take that reaches it fails) is told, as an embedded one is: the
// server's consumer reports each failure, and a connection of protocol version 11 or later gets it
// as FLOW_ERROR, which the client hands to the consume option onError. Without it the remote
// consumer just waited, and nothing on the client said why.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type QueueStats } from '../../src/broker/index.js';
import { FETCH_RETRY_MS } from '../../src/broker/queues/consumer.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { type RemoteWharf } from '../../src/client/index.js';
import { ManualClock, WharfError } from '../../src/common/index.js';
import * as P from '../../src/protocol/index.js';
import type { RecordInput } from '../../src/storage/index.js';
import { waitFor } from '../broker/topics-helpers.js';
import { RawClient } from '../protocol/raw-client.js';
import { servedBroker } from '../protocol/served-broker.js';

describe('a remote consumer whose receives fail on the server', () => {
  const clock = new ManualClock();
  const rig = servedBroker(async (b) => {
    await b.createQueue('q.dlq');
    await b.createQueue('q', { onExpire: 'dead-letter', deadLetterQueue: 'q.dlq' });
  });
  let broken = true;
  const failure = new WharfError('UNAVAILABLE', 'disk of q.dlq failed');

  beforeEach(() => {
    broken = true;
    const real = QueueEngine.prototype.appendRecords;
    vi.spyOn(QueueEngine.prototype, 'appendRecords').mockImplementation(function (
      this: QueueEngine,
      records: RecordInput[],
    ) {
      return broken ? Promise.reject(failure) : real.call(this, records);
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function serve(maxProtocolVersion?: number): Promise<RemoteWharf> {
    return rig.client((await rig.start({ maxProtocolVersion, clock })).url);
  }

  /** 'stale' expires, and a take meets it before the ready message behind it. */
  async function staleAhead(): Promise<void> {
    await rig.broker!.publish('q', [{ payload: 'stale', ttlMs: 100 }, { payload: 'ready' }]);
    clock.advance(100);
  }

  const receiveErrors = async (): Promise<number> => ((await rig.broker!.stats('q')) as QueueStats).receiveErrors;

  it('hands each failed receive to onError (FLOW_ERROR), and gets the ready messages once the dead-letter queue takes messages', async () => {
    const c = await serve();
    await staleAhead();
    const errors: WharfError[] = [];
    const seen: unknown[] = [];
    const consumer = await c.consume('q', { onError: (err) => errors.push(err) }, (m) => void seen.push(m.payload));
    await waitFor(() => errors.length === 1, 'the first failure told to the client');
    expect(errors[0]).toBeInstanceOf(WharfError);
    expect(errors[0].code).toBe('UNAVAILABLE');
    expect(errors[0].message).toContain('dead-letter queue "q.dlq" (disk of q.dlq failed)');
    clock.advance(FETCH_RETRY_MS);
    await waitFor(() => errors.length === 2, 'the retry failing too');
    expect(seen).toEqual([]);

    broken = false;
    clock.advance(2 * FETCH_RETRY_MS);
    await waitFor(() => seen.length === 1, 'the ready message');
    expect(seen).toEqual(['ready']);
    expect(errors).toHaveLength(2);
    expect(await receiveErrors()).toBe(2);
    await consumer.close();
    expect(await consumer.ended).toBeNull();
  });

  it("a failed nack of the client's failed delivery (maxDeliveries, its dead letter not written) is told too", async () => {
    const c = await serve();
    await rig.broker!.createQueue('m', { maxDeliveries: 1, deadLetterQueue: 'q.dlq' });
    await rig.broker!.publish('m', { payload: 'poison' });
    const errors: WharfError[] = [];
    const consumer = await c.consume('m', { onError: (err) => errors.push(err) }, () => {
      throw new Error('cannot handle it');
    });
    await waitFor(() => errors.length === 1, 'the failed dead letter told to the client');
    expect(errors[0].code).toBe('UNAVAILABLE');
    expect(errors[0].message).toContain('a message at maxDeliveries (delivery 1) could not be moved');
    await consumer.close();
  });

  it('a client of version 10 is not sent FLOW_ERROR (an op it does not know): its onError stays quiet, the stats count', async () => {
    const c = await serve(10);
    await staleAhead();
    const errors: WharfError[] = [];
    const consumer = await c.consume('q', { onError: (err) => errors.push(err) }, () => undefined);
    await waitFor(async () => (await receiveErrors()) === 1, 'a failed receive');
    // A version 11 connection to the same server would get it: the raw client below shows the frame.
    await c.publish('q', { payload: 'more' }); // a round trip after the failure: no push came before its answer
    expect(errors).toEqual([]);
    await consumer.close();
  });

  it('FLOW_ERROR follows the SUBSCRIBED of its flow, with the flow id and an ERROR body', async () => {
    const { port } = await rig.start({ clock });
    await staleAhead();
    const raw = await RawClient.open(port, true, P.PROTOCOL_VERSION);
    try {
      raw.send(P.encodeFrame(P.OP.CONSUME, 2, (w) => P.encodeSubscribe(w, { name: 'q', options: {}, credits: 4 })));
      const subscribed = await raw.next();
      expect(subscribed?.op).toBe(P.OP.SUBSCRIBED);
      const { subscriptionId } = P.decodeSubscribed(new P.WireReader().reset(subscribed!.body));
      const pushed = await raw.nextOp(P.OP.FLOW_ERROR);
      const { subscriptionId: id, error } = P.decodeFlowError(new P.WireReader().reset(pushed.body));
      expect(id).toBe(subscriptionId);
      expect(error.code).toBe('UNAVAILABLE');
    } finally {
      raw.close();
    }
  });

  it('onError is refused when it is not a function, by the client, and by the server when a value is sent for it', async () => {
    const c = await serve();
    await expect(c.consume('q', { onError: 'log' as unknown as () => void }, () => undefined)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const raw = await RawClient.open(rig.server!.address().port, true, P.PROTOCOL_VERSION);
    try {
      raw.send(
        P.encodeFrame(P.OP.CONSUME, 2, (w) =>
          P.encodeSubscribe(w, { name: 'q', options: { onError: 'log' }, credits: 4 }),
        ),
      );
      const answer = await raw.next();
      expect(answer?.op).toBe(P.OP.ERROR);
      expect(P.decodeError(new P.WireReader().reset(answer!.body)).code).toBe('INVALID_ARGUMENT');
    } finally {
      raw.close();
    }
  });
});
