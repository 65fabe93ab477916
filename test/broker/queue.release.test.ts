// Broker.releaseReceipt: a lease handed back because its delivery reached no one (a long poll whose
// client left) is visible again at once, and its next delivery is its first, also after a crash.
import { afterEach, describe, expect, it } from 'vitest';
import { openTestBroker, type TestBroker } from './queue-helpers.js';

describe('releaseReceipt', () => {
  let t: TestBroker;
  afterEach(() => t.cleanup());

  it('hands a lease back visible and uncounted: the next delivery is the first, with its own time', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q', { maxDeliveries: 1, visibilityTimeoutMs: 600_000 });
    await t.broker.publish('q', { payload: 'x' });
    const [first] = await t.broker.receive('q');
    await t.broker.releaseReceipt('q', first.receipt);
    t.clock.advance(50_000);
    const [again] = await t.broker.receive('q');
    expect(again.deliveryCount).toBe(1);
    expect(again.firstDeliveredAt).toBe(t.clock.now());
    await again.nack({ delayMs: 0 }); // the one delivery maxDeliveries allows: dead-lettered (dropped) now
    expect(await t.broker.receive('q', { waitMs: 0 })).toEqual([]);
  });

  it('a released receipt cannot settle any more, and releasing it twice fails with RECEIPT_INVALID', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    await t.broker.publish('q', { payload: 'x' });
    const [m] = await t.broker.receive('q');
    await t.broker.releaseReceipt('q', m.receipt);
    await expect(t.broker.releaseReceipt('q', m.receipt)).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    await expect(m.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    expect((await t.broker.receive('q')).map((x) => x.payload)).toEqual(['x']);
  });

  it('after a crash, a released message is delivered as never delivered before', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createQueue('q', { maxDeliveries: 1, visibilityTimeoutMs: 600_000 });
    await t.broker.publish('q', { payload: 'x' });
    const [first] = await t.broker.receive('q');
    await t.broker.releaseReceipt('q', first.receipt);
    t.clock.advance(50_000);
    await t.crashRestart();
    const [again] = await t.broker.receive('q');
    expect(again.payload).toBe('x');
    expect(again.deliveryCount).toBe(1);
    expect(again.firstDeliveredAt).toBe(t.clock.now());
  });
});
