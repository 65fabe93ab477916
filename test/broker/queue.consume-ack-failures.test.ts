// consume() when an ack fails: the queue's journal write that would make it durable fails. The
// consumer reports it to onError, as a failed nack, and changes nothing about the message: the ack
// holds in memory (not delivered again while the broker runs) but not on disk, so after a crash
// the message is delivered again. A lease that ran out before the ack (RECEIPT_INVALID: the
// message is redelivered as usual) is not reported.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WharfError } from '../../src/common/index.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { DiskJournal, MemoryJournal } from '../../src/storage/index.js';
import { openTestBroker, payloads, qstats, settle, until, type TestBroker } from './queue-helpers.js';

describe('consume when an ack fails', () => {
  let t: TestBroker | null = null;
  /** Journal appends that fail from now on (a failure is armed by the handler, after its take is durable). */
  let failNextAppends = 0;
  let failedAppends = 0;
  const failure = new WharfError('UNAVAILABLE', 'journal disk failed');

  beforeEach(() => {
    failNextAppends = 0;
    failedAppends = 0;
    for (const Journal of [MemoryJournal, DiskJournal]) {
      const real = Journal.prototype.append;
      vi.spyOn(Journal.prototype, 'append').mockImplementation(function (
        this: MemoryJournal | DiskJournal,
        entry: Uint8Array,
      ) {
        if (failNextAppends > 0) {
          failNextAppends--;
          failedAppends++;
          return Promise.reject(failure);
        }
        return real.call(this, entry);
      });
    }
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await t?.cleanup();
    t = null;
  });

  it('reports an ack whose journal write failed to onError, once for the acks that write held, and the consumer goes on', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    const errors: WharfError[] = [];
    const seen: unknown[] = [];
    const c = await t.broker.consume('q', { concurrency: 4, prefetch: 4, onError: (err) => errors.push(err) }, (m) => {
      seen.push(m.payload);
      if (m.payload !== 'later') failNextAppends = 1; // the acks of this turn share one write
    });
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    await until(() => errors.length === 1, t);
    expect(failedAppends).toBe(1);
    expect(errors[0]).toBe(failure);
    expect(seen).toEqual(['a', 'b']);
    // What happens to the messages is unchanged: the acks hold in memory, nothing is redelivered.
    expect(await qstats(t, 'q')).toMatchObject({ depth: 0, inFlight: 0 });
    await t.broker.publish('q', { payload: 'later' });
    await until(() => seen.length === 3, t);
    await settle(10);
    expect(seen).toEqual(['a', 'b', 'later']);
    expect(errors).toHaveLength(1);
    await c.close();
  });

  it("reports a failed ack of a handler's promise the same way", async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    const errors: WharfError[] = [];
    const c = await t.broker.consume('q', { onError: (err) => errors.push(err) }, async () => {
      await settle(1);
      failNextAppends = 1;
    });
    await t.broker.publish('q', { payload: 'a' });
    await until(() => errors.length === 1, t);
    expect(errors[0]).toBe(failure);
    expect(await qstats(t, 'q')).toMatchObject({ depth: 0, inFlight: 0 });
    await c.close();
  });

  it("ackMode 'auto': a message whose ack failed is not handed to the handler, and the failure is reported", async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    // Once the take is durable, the next journal write is the acks'.
    const realTake = QueueEngine.prototype.take;
    vi.spyOn(QueueEngine.prototype, 'take').mockImplementation(async function (
      this: QueueEngine,
      ...args: Parameters<QueueEngine['take']>
    ) {
      const out = await realTake.apply(this, args);
      if (out.length > 0) failNextAppends = 1;
      return out;
    });
    const errors: WharfError[] = [];
    const seen: unknown[] = [];
    const c = await t.broker.consume(
      'q',
      { ackMode: 'auto', concurrency: 2, onError: (err) => errors.push(err) },
      (m) => void seen.push(m.payload),
    );
    await until(() => errors.length === 2, t);
    await settle(10);
    expect(failedAppends).toBe(1);
    expect(errors).toEqual([failure, failure]); // one per message the handler did not get (their acks shared the write)
    expect(seen).toEqual([]);
    expect(await qstats(t, 'q')).toMatchObject({ depth: 0, inFlight: 0 }); // acked in memory: at most once
    await c.close();
  });

  it('after a crash, a message whose ack was not durable is delivered again', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createQueue('q');
    const errors: WharfError[] = [];
    const c = await t.broker.consume('q', { onError: (err) => errors.push(err) }, () => {
      failNextAppends = 1;
    });
    await t.broker.publish('q', { payload: 'a' });
    await until(() => errors.length === 1, t);
    await c.close();
    await t.crashRestart();
    const again = await t.broker.receive('q', { max: 10 });
    expect(payloads(again)).toEqual(['a']);
    expect(again[0].deliveryCount).toBe(2);
  });

  it('does not report an ack refused because the lease had run out (RECEIPT_INVALID): the message is redelivered as usual', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q', { visibilityTimeoutMs: 1000 });
    const errors: WharfError[] = [];
    const counts: number[] = [];
    let finishFirst: () => void = () => undefined;
    const c = await t.broker.consume('q', { concurrency: 2, onError: (err) => errors.push(err) }, (m) => {
      counts.push(m.deliveryCount);
      if (m.deliveryCount === 1) return new Promise<void>((resolve) => (finishFirst = resolve));
    });
    await t.broker.publish('q', { payload: 'slow' });
    await until(() => counts.length === 1, t);
    t.clock.advance(1000); // the first lease runs out; the message comes again
    await until(() => counts.length === 2, t);
    finishFirst(); // its ack: RECEIPT_INVALID
    await settle(10);
    expect(counts).toEqual([1, 2]);
    expect(errors).toEqual([]);
    expect(await qstats(t, 'q')).toMatchObject({ depth: 0, inFlight: 0 });
    await c.close();
  });
});
