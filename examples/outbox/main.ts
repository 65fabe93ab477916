// Transactional outbox (SQLite) + idempotent consumer on the embedded broker. Run: npx tsx examples/outbox/main.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/index.js';
import { openShop } from './shop.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-outbox-example-'));
const broker = await Broker.open({ inMemory: true });
const shop = await openShop(broker, join(dir, 'shop.db'), (l) => console.log(l));
shop.placeOrder('order-1', 40);
try {
  shop.placeOrder('order-2', 999, { failAfterWrite: true });
} catch (err) {
  console.log(`[shop]    ${(err as Error).message}: neither the order nor its event exists`);
}
shop.placeOrder('order-3', 2);
while (shop.billedOrders().length < 2) await new Promise((r) => setTimeout(r, 10));
console.log(`\nbilled ${shop.billedOrders().join(', ')}: total ${shop.billed()}`);
await shop.close();
await broker.close();
rmSync(dir, { recursive: true, force: true });
