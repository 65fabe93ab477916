// A lease ends once and leaves no timer behind: an extended lease ended by a nack or a release does
// not keep its timer, which would fire during the message's next lease and strand it in flight.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestBroker, qstats, type TestBroker } from './queue-helpers.js';

describe('lease ends', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q', { visibilityTimeoutMs: 30_000 });
    await t.broker.publish('q', { payload: 'm' });
  });
  afterEach(() => t.cleanup());

  const endings = {
    'nack({ delayMs: 0 })': {
      end: (receipt: string) => t.broker.nackReceipt('q', receipt, { delayMs: 0 }),
      counted: 1,
    },
    releaseReceipt: { end: (receipt: string) => t.broker.releaseReceipt('q', receipt), counted: 0 },
  };

  for (const [how, { end, counted }] of Object.entries(endings)) {
    it(`an extended lease ended by ${how} leaves no timer: the next lease, due at the same ms, expires and redelivers`, async () => {
      const [first] = await t.broker.receive('q');
      await first.extendVisibility(30_000); // its own timer, due at now + 30 s
      await end(first.receipt);
      const [second] = await t.broker.receive('q'); // its batch, due at now + 30 s too
      expect(second.deliveryCount).toBe(1 + counted);
      t.clock.advance(30_000);
      const [third] = await t.broker.receive('q');
      expect(third.deliveryCount).toBe(2 + counted);
      t.clock.advance(30_000); // this lease has a timer too: not in flight for good
      const [fourth] = await t.broker.receive('q');
      expect(fourth.deliveryCount).toBe(3 + counted);
      await fourth.ack();
      expect(await qstats(t, 'q')).toMatchObject({ depth: 0, inFlight: 0 });
    });
  }
});
