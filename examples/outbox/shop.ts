// Transactional outbox on SQLite: an order row and its "order.created" event commit together; the relay
// publishes events to Wharf; the billing consumer applies each once (idempotent, same-database record).
import Database from 'better-sqlite3';
import type { Subscription, TopicMessage, Wharf } from '../../src/broker/index.js';
import { SqliteOutbox, SqliteProcessedStore, idempotent, type OutboxRelay } from '../../src/patterns/index.js';

export interface Shop {
  placeOrder(orderId: string, amount: number, options?: { failAfterWrite?: boolean }): void;
  /** Sum billed by the consumer so far. */
  billed(): number;
  /** Order ids billed, in order. */
  billedOrders(): string[];
  close(): Promise<void>;
}

export async function openShop(
  broker: Wharf,
  dbFile: string,
  log: (line: string) => void = () => undefined,
): Promise<Shop> {
  const db = new Database(dbFile);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, amount REAL NOT NULL)');
  db.exec('CREATE TABLE IF NOT EXISTS invoices (order_id TEXT PRIMARY KEY, amount REAL NOT NULL, seq INTEGER)');
  const outbox = new SqliteOutbox(db);
  await broker.createTopic('shop-orders', { partitions: 1 });
  const relay: OutboxRelay = outbox.relay(broker, { onError: (e) => log(`[relay] ${e.message}`) }).start();

  // Billing keeps its processed-ids record in its own database, in the same transaction as the invoice.
  const store = new SqliteProcessedStore(db, { consumer: 'billing' });
  let seq = 0;
  const sub: Subscription = await broker.subscribe(
    'shop-orders',
    { group: 'billing', from: 'earliest' },
    idempotent(store, (m: TopicMessage, tx) => {
      const { orderId, amount } = m.payload as { orderId: string; amount: number };
      tx.prepare('INSERT INTO invoices (order_id, amount, seq) VALUES (?, ?, ?)').run(orderId, amount, ++seq);
      log(`[billing] invoiced ${orderId}: ${amount}`);
    }),
  );

  return {
    placeOrder(orderId, amount, options = {}) {
      db.transaction(() => {
        db.prepare('INSERT INTO orders (id, amount) VALUES (?, ?)').run(orderId, amount);
        outbox.add(db, { to: 'shop-orders', type: 'order.created', key: orderId, payload: { orderId, amount } });
        if (options.failAfterWrite) throw new Error(`order ${orderId} rejected after writing`);
      })();
      log(`[shop]    placed ${orderId} (${amount}) and its event in one transaction`);
    },
    billed: () => (db.prepare('SELECT coalesce(sum(amount), 0) AS s FROM invoices').get() as { s: number }).s,
    billedOrders: () =>
      (db.prepare('SELECT order_id FROM invoices ORDER BY seq').all() as Array<{ order_id: string }>).map(
        (r) => r.order_id,
      ),
    async close() {
      await relay.stop();
      await sub.close();
      db.close();
    },
  };
}
