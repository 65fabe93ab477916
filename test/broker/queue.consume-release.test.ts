// A consumer whose handler releases a message (throws WharfError RELEASED) hands it back visible at
// once and uncounted, and takes nothing itself for a backoff (10 ms, doubling with each release in a
// row): another consumer can have the message at once, and a handler that goes on releasing does not
// spin through take-release cycles.
import { afterEach, describe, expect, it } from 'vitest';
import { WharfError } from '../../src/common/index.js';
import { openTestBroker, qstats, settle, until, type TestBroker } from './queue-helpers.js';

describe('a consumer that releases', () => {
  let t: TestBroker;
  afterEach(() => t.cleanup());

  it('takes the message back only after a backoff that doubles per release in a row; others have it at once', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    await t.broker.publish('q', { payload: 'x' });
    const counts: number[] = [];
    const c = await t.broker.consume('q', { concurrency: 1 }, (m) => {
      counts.push(m.deliveryCount);
      throw new WharfError('RELEASED', 'not now');
    });
    await until(() => counts.length === 1, t);
    await settle(50);
    expect(counts).toHaveLength(1); // no take-release spin while the clock stands still

    const [other] = await t.broker.receive('q', { waitMs: 0 });
    expect([other.payload, other.deliveryCount]).toEqual(['x', 1]); // visible to others at once
    await t.broker.releaseReceipt('q', other.receipt);

    t.clock.advance(10);
    await until(() => counts.length === 2, t);
    t.clock.advance(10);
    await settle(50);
    expect(counts).toHaveLength(2); // the second release in a row pauses for 20 ms
    t.clock.advance(10);
    await until(() => counts.length === 3, t);
    expect(counts).toEqual([1, 1, 1]);
    const s = await qstats(t, 'q');
    expect([s.errorRate, s.nackRate]).toEqual([0, 0]);
    await c.close();
  });
});
