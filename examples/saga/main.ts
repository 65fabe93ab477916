// A choreographed saga: order -> payment -> inventory -> shipping over topics, with compensation.
// Run: npx tsx examples/saga/main.ts
import { Broker } from '../../src/broker/index.js';
import { startSaga } from './saga.js';

const broker = await Broker.open({ inMemory: true });
const saga = await startSaga(broker, { creditLimit: 1_000, stock: { widget: 5 }, log: (line) => console.log(line) });

const orders = [
  { orderId: 'order-1', amount: 99.99, item: 'widget', quantity: 2 }, // happy path
  { orderId: 'order-2', amount: 5_000, item: 'widget', quantity: 1 }, // payment declined -> order cancelled
  { orderId: 'order-3', amount: 250, item: 'widget', quantity: 9 }, // out of stock -> refund -> order cancelled
];
for (const order of orders) {
  const outcome = await saga.placeOrder(order);
  console.log(`=> ${outcome.orderId} ${outcome.status}: ${outcome.events.join(' -> ')}\n`);
}
await saga.close();
await broker.close();
