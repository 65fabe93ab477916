// The choreographed saga: the happy path ships, a declined payment cancels the order, and missing stock
// refunds the payment and cancels the order.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { startSaga, type Saga } from '../../examples/saga/saga.js';

let broker: Broker;
let saga: Saga;
beforeEach(async () => {
  broker = await Broker.open({ inMemory: true });
  saga = await startSaga(broker, { creditLimit: 1_000, stock: { widget: 5 } });
});
afterEach(async () => {
  await saga.close();
  await broker.close();
});

describe('saga example', () => {
  it('happy path: payment, reservation and shipment complete the order', async () => {
    const outcome = await saga.placeOrder({ orderId: 'o-1', amount: 100, item: 'widget', quantity: 2 });
    expect(outcome.status).toBe('completed');
    expect(outcome.events).toEqual([
      'order.created',
      'payment.succeeded',
      'inventory.reserved',
      'shipment.scheduled',
      'order.completed',
    ]);
    expect(saga.world.charges.get('o-1')).toBe(100);
    expect(saga.world.stock.widget).toBe(3);
  });

  it('payment failure cancels the order and touches no stock', async () => {
    const outcome = await saga.placeOrder({ orderId: 'o-2', amount: 5_000, item: 'widget', quantity: 1 });
    expect(outcome.status).toBe('cancelled');
    expect(outcome.events).toEqual(['order.created', 'payment.failed', 'order.cancelled']);
    expect(saga.world.charges.has('o-2')).toBe(false);
    expect(saga.world.stock.widget).toBe(5);
  });

  it('inventory failure refunds the payment (compensation) and cancels the order', async () => {
    const outcome = await saga.placeOrder({ orderId: 'o-3', amount: 200, item: 'widget', quantity: 9 });
    expect(outcome.status).toBe('cancelled');
    expect(outcome.events).toEqual([
      'order.created',
      'payment.succeeded',
      'inventory.failed',
      'payment.refunded',
      'order.cancelled',
    ]);
    expect(saga.world.charges.has('o-3')).toBe(false);
    expect(saga.world.stock.widget).toBe(5);
  });
});
