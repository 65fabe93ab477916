// Idempotent consumer with the SQLite store: a redelivered message is skipped; the handler's own writes
// commit with the processed record, and a failing handler records nothing so the retry runs it again.
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteProcessedStore, idempotent } from '../../src/patterns/index.js';

let db: Database.Database;
beforeEach(() => {
  db = new Database(':memory:');
  db.exec('CREATE TABLE balance (account TEXT PRIMARY KEY, cents INTEGER)');
  db.exec("INSERT INTO balance VALUES ('acc', 0)");
});
afterEach(() => db.close());

const cents = (): number =>
  (db.prepare("SELECT cents FROM balance WHERE account = 'acc'").get() as { cents: number }).cents;
const msg = (id: string, amount: number) => ({ id, payload: { amount } });

describe('idempotent consumer (SQLite store)', () => {
  it('applies a message once however often it is delivered', async () => {
    const store = new SqliteProcessedStore(db, { consumer: 'billing' });
    const duplicates: string[] = [];
    const handle = idempotent(
      store,
      (m: { id: string; payload: { amount: number } }, tx) => {
        tx.prepare("UPDATE balance SET cents = cents + ? WHERE account = 'acc'").run(m.payload.amount);
      },
      { onDuplicate: (m) => duplicates.push(m.id) },
    );
    await handle(msg('m1', 5));
    await handle(msg('m1', 5));
    await Promise.all([handle(msg('m2', 7)), handle(msg('m2', 7))]);
    expect(cents()).toBe(12);
    expect(duplicates).toEqual(['m1', 'm2']);
    expect(await store.has('m1')).toBe(true);
  });

  it('a handler that throws rolls back its writes and is run again on redelivery', async () => {
    const store = new SqliteProcessedStore(db);
    let attempts = 0;
    const handle = idempotent(store, async (m: { id: string; payload: { amount: number } }, tx) => {
      attempts++;
      tx.prepare("UPDATE balance SET cents = cents + ? WHERE account = 'acc'").run(m.payload.amount);
      if (attempts === 1) throw new Error('downstream failed');
    });
    await expect(handle(msg('m1', 5))).rejects.toThrow('downstream failed');
    expect(cents()).toBe(0);
    expect(await store.has('m1')).toBe(false);
    await handle(msg('m1', 5));
    await handle(msg('m1', 5));
    expect(cents()).toBe(5);
    expect(attempts).toBe(2);
  });

  it('separate consumers each process the same message once', async () => {
    const a = new SqliteProcessedStore(db, { consumer: 'a' });
    const b = new SqliteProcessedStore(db, { consumer: 'b' });
    const seen: string[] = [];
    await idempotent(a, () => void seen.push('a'))(msg('m', 1));
    await idempotent(b, () => void seen.push('b'))(msg('m', 1));
    await idempotent(a, () => void seen.push('a'))(msg('m', 1));
    expect(seen).toEqual(['a', 'b']);
  });

  it('keyOf picks the business key', async () => {
    const store = new SqliteProcessedStore(db);
    let runs = 0;
    const handle = idempotent(store, () => void runs++, { keyOf: (m: { id: string; dedupId: string }) => m.dedupId });
    await handle({ id: 'x', dedupId: 'order-1' });
    await handle({ id: 'y', dedupId: 'order-1' });
    expect(runs).toBe(1);
  });
});
