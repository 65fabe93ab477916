// Wires the saga's services to a broker and lets a caller place orders and await their outcome.
import type { Subscription, TopicMessage, Wharf } from '../../src/broker/index.js';
import { SAGA_TOPICS, publisherFor, sagaServices, type OrderRequest, type SagaWorld } from './services.js';

export type { OrderRequest } from './services.js';

export interface SagaOutcome {
  orderId: string;
  status: 'completed' | 'cancelled';
  /** Event types of this order, in causal order. */
  events: string[];
}

export interface Saga {
  world: SagaWorld;
  placeOrder(order: OrderRequest): Promise<SagaOutcome>;
  close(): Promise<void>;
}

export async function startSaga(
  broker: Wharf,
  options: { creditLimit?: number; stock?: Record<string, number>; log?: (line: string) => void } = {},
): Promise<Saga> {
  const world: SagaWorld = {
    creditLimit: options.creditLimit ?? 1_000,
    stock: { ...(options.stock ?? { widget: 10 }) },
    charges: new Map(),
    trace: new Map(),
    log: options.log ?? (() => undefined),
  };
  for (const topic of SAGA_TOPICS) await broker.createTopic(topic, { partitions: 3 });
  const publish = publisherFor(broker, world);
  const subs: Subscription[] = [];
  for (const [topic, group, handler] of sagaServices(world, publish)) {
    subs.push(await broker.subscribe(topic, { group, from: 'earliest' }, handler));
  }

  // The caller's view: an order is finished when the order service says completed or cancelled.
  const waiting = new Map<string, (status: SagaOutcome['status']) => void>();
  subs.push(
    await broker.subscribe('orders', { group: 'saga-monitor', from: 'earliest' }, (m: TopicMessage) => {
      const { orderId } = m.payload as unknown as OrderRequest;
      if (m.type === 'order.completed') waiting.get(orderId)?.('completed');
      if (m.type === 'order.cancelled') waiting.get(orderId)?.('cancelled');
    }),
  );

  return {
    world,
    async placeOrder(order) {
      const done = new Promise<SagaOutcome['status']>((resolve) => waiting.set(order.orderId, resolve));
      world.log(`[order]     ${order.orderId}: created (${order.quantity} x ${order.item}, ${order.amount})`);
      await publish('orders', 'order.created', order);
      const status = await done;
      waiting.delete(order.orderId);
      return { orderId: order.orderId, status, events: [...(world.trace.get(order.orderId) ?? [])] };
    },
    async close() {
      for (const s of subs) await s.close();
    },
  };
}
