// The four services of the order saga. Each reacts to events on topics and publishes the next event;
// none calls another. Compensation: a failed inventory step refunds the payment, and a failed or
// refunded payment cancels the order. Handlers are idempotent (a redelivered event is skipped).
import type { TopicMessage, Wharf } from '../../src/broker/index.js';
import { MemoryProcessedStore, idempotent } from '../../src/patterns/index.js';

export interface OrderRequest {
  orderId: string;
  amount: number;
  item: string;
  quantity: number;
}

export interface SagaWorld {
  /** Payments above this are declined. */
  creditLimit: number;
  /** Units in stock per item. */
  stock: Record<string, number>;
  /** Charges held per order (refunded ones are removed). */
  charges: Map<string, number>;
  /** Event types published per order, in causal order. */
  trace: Map<string, string[]>;
  log: (line: string) => void;
}

type Handler = (m: TopicMessage) => Promise<void>;
type Publish = (topic: string, type: string, order: OrderRequest, extra?: Record<string, unknown>) => Promise<void>;

export const SAGA_TOPICS = ['orders', 'payments', 'inventory', 'shipping'] as const;

/** Publishes one saga event (keyed by order id, so one order's events stay in order per topic). */
export function publisherFor(broker: Wharf, world: SagaWorld): Publish {
  return async (topic, type, order, extra = {}) => {
    const trace = world.trace.get(order.orderId) ?? [];
    trace.push(type);
    world.trace.set(order.orderId, trace);
    await broker.publish(topic, { key: order.orderId, type, payload: { ...order, ...extra } });
  };
}

/** Subscriptions of every service: [topic, consumer group, handler]. */
export function sagaServices(world: SagaWorld, publish: Publish): Array<[string, string, Handler]> {
  const on = (types: Record<string, (order: OrderRequest, m: TopicMessage) => Promise<void>>): Handler =>
    idempotent(new MemoryProcessedStore(), async (m: TopicMessage) => {
      const step = types[m.type];
      if (step) await step(m.payload as unknown as OrderRequest, m);
    });

  const payment = on({
    'order.created': async (o) => {
      if (o.amount > world.creditLimit) {
        world.log(`[payment]   ${o.orderId}: charge ${o.amount} declined (limit ${world.creditLimit})`);
        return publish('payments', 'payment.failed', o, { reason: 'credit limit exceeded' });
      }
      world.charges.set(o.orderId, o.amount);
      world.log(`[payment]   ${o.orderId}: charged ${o.amount}`);
      await publish('payments', 'payment.succeeded', o);
    },
  });
  const refund = on({
    'inventory.failed': async (o) => {
      world.charges.delete(o.orderId);
      world.log(`[payment]   ${o.orderId}: refunded ${o.amount} (compensation)`);
      await publish('payments', 'payment.refunded', o);
    },
  });
  const inventory = on({
    'payment.succeeded': async (o) => {
      const have = world.stock[o.item] ?? 0;
      if (have < o.quantity) {
        world.log(`[inventory] ${o.orderId}: ${o.quantity} x ${o.item} wanted, ${have} in stock`);
        return publish('inventory', 'inventory.failed', o, { reason: 'out of stock' });
      }
      world.stock[o.item] = have - o.quantity;
      world.log(`[inventory] ${o.orderId}: reserved ${o.quantity} x ${o.item}`);
      await publish('inventory', 'inventory.reserved', o);
    },
  });
  const shipping = on({
    'inventory.reserved': async (o) => {
      world.log(`[shipping]  ${o.orderId}: shipment scheduled`);
      await publish('shipping', 'shipment.scheduled', o);
    },
  });
  const orderFromPayments = on({
    'payment.failed': async (o) => {
      world.log(`[order]     ${o.orderId}: cancelled (payment failed)`);
      await publish('orders', 'order.cancelled', o, { reason: 'payment failed' });
    },
    'payment.refunded': async (o) => {
      world.log(`[order]     ${o.orderId}: cancelled (out of stock, payment refunded)`);
      await publish('orders', 'order.cancelled', o, { reason: 'out of stock' });
    },
  });
  const orderFromShipping = on({
    'shipment.scheduled': async (o) => {
      world.log(`[order]     ${o.orderId}: completed`);
      await publish('orders', 'order.completed', o);
    },
  });

  return [
    ['orders', 'payment-service', payment],
    ['inventory', 'payment-service', refund],
    ['payments', 'inventory-service', inventory],
    ['inventory', 'shipping-service', shipping],
    ['payments', 'order-service', orderFromPayments],
    ['shipping', 'order-service', orderFromShipping],
  ];
}
