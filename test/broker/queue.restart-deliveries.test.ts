// A lease ended by a restart (a crash or a clean close) is a failed delivery: it counts towards
// maxDeliveries, so a message that crashes its consumer's process every time is dead-lettered.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { QUEUE_DEFAULTS } from '../../src/broker/queues/queue-config.js';
import { WharfError } from '../../src/common/index.js';
import { openTestBroker, qstats, type TestBroker } from './queue-helpers.js';

describe('maxDeliveries across restarts', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker({ disk: true, fsync: 'always' });
  });
  afterEach(() => t.cleanup());

  it('a message whose last allowed lease a crash ends is dead-lettered on restart, as on expiry, and stays so', async () => {
    // The dead-letter queue sorts after the source: it opens later, and takes the dead letter all the same.
    await t.broker.createQueue('work.dlq');
    await t.broker.createQueue('work', { maxDeliveries: 2, deadLetterQueue: 'work.dlq', visibilityTimeoutMs: 60_000 });
    await t.broker.publish('work', { payload: 'poison', headers: { trace: 't1' } });
    const firstAt = t.clock.now();
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [m] = await t.broker.receive('work');
      if (m === undefined) break;
      counts.push(m.deliveryCount);
      t.clock.advance(10); // keep times distinct
      await t.crashRestart(); // its handler took the process down
    }
    expect(counts).toEqual([1, 2]);
    expect(await qstats(t, 'work')).toMatchObject({ depth: 0, inFlight: 0, deadLettered: 1 });
    await t.crashRestart(); // the dead letter and its settle were durable
    expect(await t.broker.receive('work')).toEqual([]);
    const dead = await t.broker.receive('work.dlq', { max: 10 });
    expect(dead.map((d) => d.payload)).toEqual(['poison']);
    expect(dead[0].headers).toMatchObject({
      trace: 't1',
      'x-dead-letter-reason': 'max-deliveries',
      'x-delivery-count': '2',
      'x-source-queue': 'work',
      'x-first-delivered-at': String(firstAt),
      'x-last-delivered-at': String(firstAt + 10),
    });
    expect(dead[0].headers['x-dead-letter-error']).toMatch(/restart after delivery 2/);
  });

  it('clean restarts count too (the close-time snapshot marks open leases); without a deadLetterQueue the message is dropped', async () => {
    await t.broker.createQueue('q', { maxDeliveries: 1, visibilityTimeoutMs: 60_000 });
    await t.broker.publish('q', [{ payload: 'poison' }, { payload: 'handed-back' }]);
    const got = await t.broker.receive('q', { max: 2 });
    expect(got.map((m) => m.payload)).toEqual(['poison', 'handed-back']);
    await t.broker.releaseReceipt('q', got[1].receipt); // its delivery reached no one: not counted
    await t.restart();
    const after = await t.broker.receive('q', { max: 10 });
    expect(after.map((m) => [m.payload, m.deliveryCount])).toEqual([['handed-back', 1]]);
    expect(await qstats(t, 'q')).toMatchObject({ dropped: 1, depth: 0, inFlight: 1 });
  });

  it('a dead letter that cannot be written at open leaves the message to be delivered again after a wait, and the broker opens', async () => {
    await t.broker.createQueue('work.dlq');
    await t.broker.createQueue('work', { maxDeliveries: 1, deadLetterQueue: 'work.dlq' });
    await t.broker.publish('work', { payload: 'poison' });
    expect((await t.broker.receive('work')).length).toBe(1);
    const failure = new WharfError('UNAVAILABLE', 'dead-letter queue unavailable');
    const append = vi.spyOn(QueueEngine.prototype, 'appendRecords').mockRejectedValueOnce(failure);
    let attempts: number;
    try {
      await t.crashRestart();
    } finally {
      attempts = append.mock.calls.length;
      append.mockRestore();
    }
    expect(attempts).toBe(1);
    expect(await qstats(t, 'work')).toMatchObject({ delayed: 1, inFlight: 0, deadLettered: 0, deadLetterErrors: 1 });
    t.clock.advance(QUEUE_DEFAULTS.deadLetterRetryMs); // the queue's retry backoff: 1 s for a first delivery
    const [again] = await t.broker.receive('work');
    expect(again.deliveryCount).toBe(2);
  });
});
