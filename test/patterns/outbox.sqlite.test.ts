// Transactional outbox on SQLite: add() must be inside the user's transaction, only committed rows are
// published, in order, the in-process wake-up beats the poll interval, and a crash before marking is harmless.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteOutbox } from '../../src/patterns/index.js';
import { RecordingPublisher } from './recording-publisher.js';
import { waitFor } from './wait-for.js';

let dir: string;
let db: Database.Database;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-outbox-sqlite-'));
  db = new Database(join(dir, 'app.db'));
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY, amount REAL)');
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function placeOrder(outbox: SqliteOutbox, id: string, fail = false): void {
  db.transaction(() => {
    db.prepare('INSERT INTO orders (id, amount) VALUES (?, 10)').run(id);
    outbox.add(db, { to: 'orders', type: 'order.created', key: id, payload: { orderId: id } });
    if (fail) throw new Error('business rule failed');
  })();
}

const pending = (outbox: SqliteOutbox): number =>
  (db.prepare(`SELECT count(*) AS c FROM ${outbox.table} WHERE sent_at IS NULL`).get() as { c: number }).c;

describe('SQLite outbox', () => {
  it('refuses add() outside a transaction', () => {
    const outbox = new SqliteOutbox(db);
    expect(() => outbox.add(db, { to: 'orders', payload: 1 })).toThrow(/inside a transaction/);
  });

  it('publishes committed messages in order, skips rolled-back ones, keeps byte payloads, marks sent', async () => {
    const outbox = new SqliteOutbox(db);
    placeOrder(outbox, 'o1');
    expect(() => placeOrder(outbox, 'o2', true)).toThrow('business rule failed');
    placeOrder(outbox, 'o3');
    db.transaction(() => outbox.add(db, { to: 'blobs', payload: new Uint8Array([1, 2, 255]) }))();
    const target = new RecordingPublisher();
    const relay = outbox.relay(target).start();
    try {
      await waitFor(() => pending(outbox) === 0, 5_000, 'all marked sent');
      expect(target.stored.map((s) => s.message.key ?? s.to)).toEqual(['o1', 'o3', 'blobs']);
      expect(target.stored[2].message.payload).toEqual(new Uint8Array([1, 2, 255]));
      expect(target.stored[0].message.sequence).toBe(1);
      expect(target.stored[0].message.producerId).toBe('outbox.wharf_outbox');
    } finally {
      await relay.stop();
    }
  });

  it('add() wakes an idle relay in the same process without waiting for the poll', async () => {
    const outbox = new SqliteOutbox(db);
    const target = new RecordingPublisher();
    const relay = outbox.relay(target, { pollIntervalMs: 60_000 }).start();
    try {
      await new Promise((r) => setTimeout(r, 100));
      placeOrder(outbox, 'now');
      await waitFor(() => target.stored.length === 1, 5_000, 'woken publication');
    } finally {
      await relay.stop();
    }
  });

  it('rows published but not marked (relay died) are re-published by the next relay and stored once', async () => {
    const outbox = new SqliteOutbox(db);
    for (const id of ['a', 'b']) placeOrder(outbox, id);
    const target = new RecordingPublisher();
    let died!: () => void;
    const death = new Promise<void>((r) => (died = r));
    const first = outbox
      .relay(target, {
        afterPublish: () => {
          died();
          throw new Error('relay died before marking');
        },
      })
      .start();
    await death;
    await first.stop();
    expect(pending(outbox)).toBe(2);
    placeOrder(outbox, 'c');
    const second = outbox.relay(target).start();
    try {
      await waitFor(() => pending(outbox) === 0, 5_000, 'drained');
      expect(target.calls.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5); // a and b were sent twice
      expect(target.stored.map((s) => s.message.key)).toEqual(['a', 'b', 'c']);
    } finally {
      await second.stop();
    }
  });
});

describe('SQLite outbox with a manual transaction held open across awaits', () => {
  it('does not publish rows of a transaction that is still open, nor after it rolls back', async () => {
    const outbox = new SqliteOutbox(db);
    const target = new RecordingPublisher();
    const relay = outbox.relay(target, { pollIntervalMs: 10 }).start();
    try {
      db.exec('BEGIN');
      outbox.add(db, { to: 'orders', key: 'maybe', payload: 1 });
      await new Promise((r) => setTimeout(r, 100)); // the relay polls several times meanwhile
      expect(target.stored.length).toBe(0);
      db.exec('ROLLBACK');
      db.transaction(() => outbox.add(db, { to: 'orders', key: 'sure', payload: 2 }))();
      await waitFor(() => target.stored.length === 1, 5_000, 'committed row published');
      expect(target.stored[0].message.key).toBe('sure');
    } finally {
      await relay.stop();
    }
  });
});
