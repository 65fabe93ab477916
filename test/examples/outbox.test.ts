// Outbox example: committed orders are billed once each, a rolled-back order never produces an event.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { openShop } from '../../examples/outbox/shop.js';
import { waitFor } from '../patterns/wait-for.js';

describe('outbox example', () => {
  it('bills committed orders once, in order, and never a rolled-back one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-outbox-example-test-'));
    const broker = await Broker.open({ inMemory: true });
    const shop = await openShop(broker, join(dir, 'shop.db'));
    try {
      shop.placeOrder('a', 10);
      expect(() => shop.placeOrder('b', 20, { failAfterWrite: true })).toThrow(/rejected/);
      shop.placeOrder('c', 5);
      await waitFor(() => shop.billedOrders().length === 2, 10_000, 'two invoices');
      expect(shop.billedOrders()).toEqual(['a', 'c']);
      expect(shop.billed()).toBe(15);
    } finally {
      await shop.close();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
