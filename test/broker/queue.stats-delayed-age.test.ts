// docs/operations.md (Metrics): wharf_queue_oldest_message_age_seconds is the "age of the oldest
// unsettled message (ready, in flight or delayed)"; it comes from QueueStats.oldestAgeMs.
import { expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';

it('oldestAgeMs counts a message published with delayMs while it waits', async () => {
  const clock = new ManualClock();
  const b = await Broker.open({ inMemory: true, clock });
  try {
    await b.createQueue('d');
    await b.publish('d', { payload: 1, delayMs: 600_000 });
    clock.advance(300_000); // published 5 minutes ago, still delayed for 5 more
    const s = await b.stats('d');
    if (s.kind !== 'queue') throw new Error('not a queue');
    expect(s.delayed).toBe(1);
    expect(s.oldestAgeMs).toBeGreaterThanOrEqual(300_000);
  } finally {
    await b.close();
  }
});

it('oldestAgeMs counts a delayed message once it is due and ready', async () => {
  const clock = new ManualClock();
  const b = await Broker.open({ inMemory: true, clock });
  try {
    await b.createQueue('d');
    await b.publish('d', { payload: 1, delayMs: 10_000 });
    clock.advance(60_000);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    const s = await b.stats('d');
    if (s.kind !== 'queue') throw new Error('not a queue');
    expect(s.oldestAgeMs).toBeGreaterThanOrEqual(50_000);
  } finally {
    await b.close();
  }
});
