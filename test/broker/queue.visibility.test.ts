// Leases: invisible for visibilityTimeoutMs; expiry redelivers with deliveryCount + 1; receipts per delivery.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestBroker, type TestBroker } from './queue-helpers.js';

describe('visibility timeouts and receipts', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q', { visibilityTimeoutMs: 1000 });
    await t.broker.publish('q', { payload: 'x' });
  });
  afterEach(() => t.cleanup());

  it('a message whose lease expires is delivered again with deliveryCount 2', async () => {
    const [first] = await t.broker.receive('q');
    expect(first.deliveryCount).toBe(1);
    t.clock.advance(999);
    expect(await t.broker.receive('q')).toEqual([]);
    t.clock.advance(1);
    const [second] = await t.broker.receive('q');
    expect(second.payload).toBe('x');
    expect(second.deliveryCount).toBe(2);
    expect(second.firstDeliveredAt).toBe(first.firstDeliveredAt);
    expect(second.receipt).not.toBe(first.receipt);
  });

  it('a late ack from an expired delivery fails with RECEIPT_INVALID and does not settle the redelivery', async () => {
    const [first] = await t.broker.receive('q');
    t.clock.advance(1000);
    await expect(first.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    const [second] = await t.broker.receive('q');
    await expect(first.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    t.clock.advance(1000);
    const [third] = await t.broker.receive('q');
    expect(third.deliveryCount).toBe(3);
    await expect(second.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    await third.ack();
    t.clock.advance(5000);
    expect(await t.broker.receive('q')).toEqual([]);
  });

  it('extendVisibility keeps the lease past the original timeout', async () => {
    const [m] = await t.broker.receive('q');
    t.clock.advance(900);
    await m.extendVisibility(5000);
    t.clock.advance(4000);
    expect(await t.broker.receive('q')).toEqual([]);
    await m.ack();
    t.clock.advance(10_000);
    expect(await t.broker.receive('q')).toEqual([]);
  });

  it('a receive can override the lease length', async () => {
    await t.broker.receive('q', { visibilityTimeoutMs: 100 });
    t.clock.advance(100);
    const [m] = await t.broker.receive('q');
    expect(m.deliveryCount).toBe(2);
  });

  it('acking twice fails the second time', async () => {
    const [m] = await t.broker.receive('q');
    await m.ack();
    await expect(m.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
  });
});
