// consume() when its receives fail: a queue whose dead-letter queue cannot take an expired message
// (onExpire 'dead-letter') fails every receive that reaches it, ready messages behind it included.
// The consumer reports each failure (onError, UNAVAILABLE naming the dead-letter queue), counts it
// in receiveErrors, and tries again after a backoff that doubles up to FETCH_RETRY_MAX_MS, never
// in a loop.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FETCH_RETRY_MAX_MS, FETCH_RETRY_MS } from '../../src/broker/queues/consumer.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { QUEUE_DEFAULTS } from '../../src/broker/queues/queue-config.js';
import type { RecordInput } from '../../src/storage/index.js';
import { WharfError } from '../../src/common/index.js';
import { openTestBroker, payloads, qstats, settle, until, type TestBroker } from './queue-helpers.js';

describe('consume when receives fail', () => {
  let t: TestBroker;
  /** Appends to the dead-letter queue tried, and whether they fail. */
  let attempts = 0;
  let broken = true;
  /** After this many failed attempts the dead-letter queue takes messages again (ends a loop that never yields). */
  let failAtMost = Infinity;
  const failure = new WharfError('UNAVAILABLE', 'disk of q.dlq failed');

  beforeEach(async () => {
    t = await openTestBroker();
    attempts = 0;
    broken = true;
    failAtMost = Infinity;
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { onExpire: 'dead-letter', deadLetterQueue: 'q.dlq' });
    const real = QueueEngine.prototype.appendRecords;
    vi.spyOn(QueueEngine.prototype, 'appendRecords').mockImplementation(function (
      this: QueueEngine,
      records: RecordInput[],
    ) {
      attempts++;
      if (broken && attempts <= failAtMost) return Promise.reject(failure);
      return real.call(this, records);
    });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await t.cleanup();
  });

  /** 'stale' expires, and a receive meets it before the ready message behind it. */
  async function staleAhead(): Promise<void> {
    await t.broker.publish('q', [{ payload: 'stale', ttlMs: 100 }, { payload: 'ready' }]);
    t.clock.advance(100);
  }

  it('reports each failed receive to onError (UNAVAILABLE, naming the dead-letter queue) and counts it in receiveErrors; once the dead-letter queue takes messages, the ready ones are delivered', async () => {
    await staleAhead();
    const errors: WharfError[] = [];
    const seen: unknown[] = [];
    const c = await t.broker.consume('q', { onError: (err) => errors.push(err) }, (m) => void seen.push(m.payload));
    await until(() => errors.length === 1, t);
    expect(errors[0]).toBeInstanceOf(WharfError);
    expect(errors[0]).toMatchObject({ code: 'UNAVAILABLE', cause: failure, details: { deadLetterQueue: 'q.dlq' } });
    expect(errors[0].message).toContain('dead-letter queue "q.dlq" (disk of q.dlq failed)');
    expect(errors[0].message).toContain('Fix what keeps "q.dlq" from storing');
    expect(await qstats(t, 'q')).toMatchObject({ depth: 2, inFlight: 0, receiveErrors: 1, deadLettered: 0 });
    expect(seen).toEqual([]);

    broken = false;
    await until(() => seen.length === 1, t, 10);
    expect(seen).toEqual(['ready']);
    expect(payloads(await t.broker.receive('q.dlq', { max: 10 }))).toEqual(['stale']);
    expect(errors).toHaveLength(1);
    expect(await qstats(t, 'q')).toMatchObject({ receiveErrors: 1, deadLettered: 1, expired: 1 });
    await c.close();
  });

  it('waits a backoff after each failure, doubled for each in a row up to FETCH_RETRY_MAX_MS, and not woken early by publishes', async () => {
    await staleAhead();
    const errors: WharfError[] = [];
    const c = await t.broker.consume('q', { onError: (err) => errors.push(err) }, () => undefined);
    await until(() => errors.length === 1, t);
    let waitMs = FETCH_RETRY_MS;
    for (let failures = 1; failures <= 9; failures++) {
      await t.broker.publish('q', { payload: 'more' }); // wakes idle takers: not this one
      await settle(20);
      t.clock.advance(waitMs - 1);
      await settle(20);
      expect(errors).toHaveLength(failures);
      t.clock.advance(1);
      await until(() => errors.length === failures + 1, t);
      waitMs = Math.min(FETCH_RETRY_MAX_MS, waitMs * 2);
    }
    expect(waitMs).toBe(FETCH_RETRY_MAX_MS); // the cap was reached
    expect(attempts).toBe(10);
    expect((await qstats(t, 'q')).receiveErrors).toBe(10);
    await c.close();
  });

  it('two consumers whose receives fail do not wake each other in a loop', async () => {
    // 'fresh' is leased before the take meets 'stale'; the failed take gives it back and wakes
    // the other consumer, whose take fails the same way, and so on, without ever yielding.
    await t.broker.publish('q', [{ payload: 'fresh' }, { payload: 'stale', ttlMs: 100 }]);
    t.clock.advance(100);
    failAtMost = 100;
    const seen: unknown[] = [];
    const a = await t.broker.consume('q', {}, (m) => void seen.push(m.payload));
    const b = await t.broker.consume('q', {}, (m) => void seen.push(m.payload));
    await settle(50);
    expect(attempts).toBe(2); // one failed take each, then their backoffs
    expect(seen).toEqual([]);
    expect(await qstats(t, 'q')).toMatchObject({ depth: 2, inFlight: 0, receiveErrors: 2 });
    await Promise.all([a.close(), b.close()]);
  });

  it('close() during a backoff ends it at once', async () => {
    await staleAhead();
    let errors = 0;
    const c = await t.broker.consume('q', { onError: () => errors++ }, () => undefined);
    await until(() => errors === 1, t);
    t.clock.advance(FETCH_RETRY_MS); // into the second backoff
    await until(() => errors === 2, t);
    await c.close(); // the clock does not move: a close that waited for the backoff would hang
    expect(await c.ended).toBeNull();
    expect(await qstats(t, 'q')).toMatchObject({ depth: 2, inFlight: 0 });
  });

  it('an onError that throws does not stop the consumer; one that is not a function is INVALID_ARGUMENT', async () => {
    await staleAhead();
    let calls = 0;
    const c = await t.broker.consume(
      'q',
      {
        onError: () => {
          calls++;
          throw new Error('a bug in the callback');
        },
      },
      () => undefined,
    );
    await until(() => calls === 1, t);
    t.clock.advance(FETCH_RETRY_MS);
    await until(() => calls === 2, t);
    await c.close();
    await expect(
      t.broker.consume('q', { onError: 'log' as unknown as () => void }, () => undefined),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a message at maxDeliveries whose dead letter cannot be written comes back only after deadLetterRetryMs, and each failed nack is reported', async () => {
    // No retry backoff: the queue's own wait cannot hide a loop.
    await t.broker.createQueue('m', { maxDeliveries: 2, deadLetterQueue: 'q.dlq', retry: { initialDelayMs: 0 } });
    await t.broker.publish('m', { payload: 'poison' });
    const errors: WharfError[] = [];
    const counts: number[] = [];
    const handler = (msg: { deliveryCount: number }): void => {
      counts.push(msg.deliveryCount);
      throw new Error('cannot handle it');
    };
    // Two consumers: visible again at once, the message went from one to the other as fast as the
    // event loop turned, each failed nack trying the dead-letter queue again.
    const a = await t.broker.consume('m', { onError: (err) => errors.push(err) }, handler);
    const b = await t.broker.consume('m', { onError: (err) => errors.push(err) }, handler);
    await until(() => errors.length >= 1, t);
    await settle(50);
    expect(counts).toEqual([1, 2]);
    expect(attempts).toBe(1);
    expect(errors[0]).toMatchObject({ code: 'UNAVAILABLE', cause: failure });
    expect(errors[0].message).toContain('a message at maxDeliveries (delivery 2) could not be moved');
    expect(await qstats(t, 'm')).toMatchObject({ depth: 0, delayed: 1, inFlight: 0, deadLetterErrors: 1 });

    t.clock.advance(QUEUE_DEFAULTS.deadLetterRetryMs);
    await until(() => errors.length === 2, t);
    expect(counts).toEqual([1, 2, 3]);
    broken = false;
    t.clock.advance(QUEUE_DEFAULTS.deadLetterRetryMs);
    await until(() => counts.length === 4, t);
    await until(() => attempts === 3, t);
    await settle(10);
    expect(payloads(await t.broker.receive('q.dlq', { max: 10 }))).toEqual(['poison']);
    expect(await qstats(t, 'm')).toMatchObject({ deadLettered: 1, deadLetterErrors: 2, depth: 0, delayed: 0 });
    expect(errors).toHaveLength(2);
    await Promise.all([a.close(), b.close()]);
  });

  it('without onError the consumer still backs off and counts the failures', async () => {
    await staleAhead();
    const c = await t.broker.consume('q', {}, () => undefined);
    await until(() => attempts === 1, t);
    await settle(20);
    expect(attempts).toBe(1);
    t.clock.advance(FETCH_RETRY_MS);
    await until(() => attempts === 2, t);
    expect((await qstats(t, 'q')).receiveErrors).toBe(2);
    await c.close();
  });
});
