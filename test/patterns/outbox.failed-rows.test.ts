// A message the broker would refuse never blocks the outbox: add() refuses what is wrong with the message
// itself inside the user's transaction, and a row the target refuses for good at publish time is set aside
// as failed (kept, listed, retried or deleted) while later rows go on. Transient refusals keep the order.
// SQLite with an embedded broker; the PostgreSQL side is in outbox.postgres.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker, type TopicMessage } from '../../src/broker/index.js';
import type { WharfError } from '../../src/common/index.js';
import { SqliteOutbox } from '../../src/patterns/index.js';
import { waitFor } from './wait-for.js';

let dir: string;
let db: Database.Database;
let broker: Broker;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-outbox-failed-'));
  db = new Database(join(dir, 'app.db'));
  db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)');
  broker = await Broker.open({ inMemory: true });
});
afterEach(async () => {
  await broker.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const pending = (outbox: SqliteOutbox): number =>
  (
    db.prepare(`SELECT count(*) AS c FROM ${outbox.table} WHERE sent_at IS NULL AND failed_at IS NULL`).get() as {
      c: number;
    }
  ).c;

/** Keys of the messages in a topic, in offset order. */
async function keysIn(topic: string, count: number): Promise<Array<string | null>> {
  const seen: TopicMessage[] = [];
  const sub = await broker.subscribe(topic, { from: 'earliest' }, (m) => void seen.push(m));
  try {
    await waitFor(() => seen.length >= count, 5_000, `${count} messages in ${topic}`);
    await new Promise((r) => setTimeout(r, 50)); // one more would arrive right behind
    return seen.map((m) => m.key);
  } finally {
    await sub.close();
  }
}

describe('outbox add() validation', () => {
  it('refuses, in the user transaction, a message publish would refuse for itself; nothing is committed', () => {
    const outbox = new SqliteOutbox(db);
    const attempt = (message: object): WharfError => {
      try {
        db.transaction(() => {
          db.prepare('INSERT INTO orders (id) VALUES (?)').run('o1');
          outbox.add(db, { to: 'orders', ...message });
        })();
      } catch (err) {
        return err as WharfError;
      }
      throw new Error('add() accepted an invalid message');
    };
    expect(attempt({ headers: { n: 1 } })).toMatchObject({ code: 'INVALID_ARGUMENT', message: /headers\["n"\]/ });
    expect(attempt({ to: 'no spaces' })).toMatchObject({ code: 'INVALID_ARGUMENT', message: /"to"/ });
    expect(attempt({ priority: -1 })).toMatchObject({ code: 'INVALID_ARGUMENT', message: /priority/ });
    expect(attempt({ payload: { n: 1n } })).toMatchObject({ code: 'INVALID_ARGUMENT', message: /JSON/ });
    expect(attempt({ headers: { 'wharf.id': 'x' } })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(attempt({ payload: 'x'.repeat(1024 * 1024) })).toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    expect(db.prepare('SELECT count(*) AS c FROM orders').get()).toEqual({ c: 0 });
    expect(db.prepare(`SELECT count(*) AS c FROM ${outbox.table}`).get()).toEqual({ c: 0 });
  });

  it('takes a message up to its maxMessageBytes option (for targets whose limit was raised)', () => {
    const outbox = new SqliteOutbox(db, { maxMessageBytes: 2 * 1024 * 1024 });
    db.transaction(() => outbox.add(db, { to: 'orders', payload: 'x'.repeat(1024 * 1024) }))();
    expect(() => new SqliteOutbox(db, { maxMessageBytes: 0 })).toThrow(/maxMessageBytes/);
  });
});

describe('outbox rows the broker refuses for good', () => {
  it('a relay refuses a relayId or batchSize every publish would refuse (it would set every row aside)', () => {
    const outbox = new SqliteOutbox(db);
    expect(() => outbox.relay(broker, { relayId: 'r'.repeat(300) })).toThrow(/relayId/);
    expect(() => outbox.relay(broker, { relayId: 'a\u0000b' })).toThrow(/relayId/);
    expect(() => outbox.relay(broker, { batchSize: 10_001 })).toThrow(/batchSize/);
  });

  it('are set aside and reported; later rows, to the same target too, are published in order', async () => {
    await broker.createTopic('orders', { partitions: 1 });
    await broker.createTopic('small', { partitions: 1, maxMessageBytes: 200 });
    const outbox = new SqliteOutbox(db);
    db.transaction(() => {
      outbox.add(db, { to: 'orders', key: 'o1', payload: 1 });
      outbox.add(db, { to: 'orders', key: 'bad-partition', partition: 3, payload: 2 }); // valid, not for this topic
      outbox.add(db, { to: 'orders', key: 'o3', payload: 3 });
      outbox.add(db, { to: 'small', key: 'too-large', payload: 'x'.repeat(500) });
      outbox.add(db, { to: 'orders', key: 'o5', payload: 5 });
    })();
    const errors: WharfError[] = [];
    const relay = outbox.relay(broker, { retryDelayMs: 10, onError: (e) => errors.push(e) }).start();
    try {
      await waitFor(() => pending(outbox) === 0, 5_000, 'every row sent or failed');
    } finally {
      await relay.stop();
    }
    expect(await keysIn('orders', 3)).toEqual(['o1', 'o3', 'o5']);
    expect(relay.published).toBe(3);
    expect(relay.failed).toBe(2);
    expect(errors.map((e) => [e.code, e.details?.outboxRowId])).toEqual([
      ['INVALID_ARGUMENT', 2],
      ['MESSAGE_TOO_LARGE', 4],
    ]);
    const failed = outbox.listFailed();
    expect(failed.map((r) => [r.id, r.to, r.message.key])).toEqual([
      [2, 'orders', 'bad-partition'],
      [4, 'small', 'too-large'],
    ]);
    expect(failed[0].error).toMatch(/^INVALID_ARGUMENT: .*partition 3 does not exist/);
    expect(failed[1].error).toMatch(/^MESSAGE_TOO_LARGE: /);
    expect(failed[1].failedAt).toBeInstanceOf(Date);
    expect(outbox.prune(-1_000)).toBe(3); // prune takes sent rows only: failed ones stay for inspection
    expect(outbox.listFailed().length).toBe(2);
  });

  it('a failed row retried after its cause is fixed is published; deleteFailed removes failed rows only', async () => {
    await broker.createTopic('small', { partitions: 1, maxMessageBytes: 200 });
    const outbox = new SqliteOutbox(db);
    db.transaction(() => {
      outbox.add(db, { to: 'small', key: 'too-large', payload: 'x'.repeat(500) });
      outbox.add(db, { to: 'small', key: 'bad-partition', partition: 1, payload: 2 });
      outbox.add(db, { to: 'small', key: 'fits', payload: 3 });
    })();
    const relay = outbox.relay(broker, { retryDelayMs: 10 }).start();
    try {
      await waitFor(() => pending(outbox) === 0, 5_000, 'every row sent or failed');
      expect(outbox.listFailed().map((r) => r.id)).toEqual([1, 2]);
      expect(outbox.deleteFailed([2, 3])).toBe(1); // row 3 was sent: left alone
      await broker.deleteTopic('small');
      await broker.createTopic('small', { partitions: 1, maxMessageBytes: 1024 });
      expect(outbox.retryFailed([1])).toBe(1);
      await waitFor(() => relay.published === 2, 5_000, 'the retried row published');
    } finally {
      await relay.stop();
    }
    expect(await keysIn('small', 1)).toEqual(['too-large']);
    expect(outbox.listFailed()).toEqual([]);
    expect(db.prepare(`SELECT id FROM ${outbox.table} ORDER BY id`).all()).toEqual([{ id: 1 }, { id: 3 }]);
  });

  it('a transient refusal (the target is not created yet) holds the row and those behind it, in order', async () => {
    await broker.createTopic('orders', { partitions: 1 });
    const outbox = new SqliteOutbox(db);
    db.transaction(() => {
      outbox.add(db, { to: 'late', key: 'l1', payload: 1 });
      outbox.add(db, { to: 'orders', key: 'o2', payload: 2 });
    })();
    const errors: string[] = [];
    const relay = outbox.relay(broker, { retryDelayMs: 10, onError: (e) => errors.push(e.code) }).start();
    try {
      await waitFor(() => errors.length >= 3, 5_000, 'three refused rounds');
      expect(new Set(errors)).toEqual(new Set(['NOT_FOUND']));
      expect(relay.published).toBe(0);
      await broker.createTopic('late', { partitions: 1 });
      await waitFor(() => pending(outbox) === 0, 5_000, 'both published');
    } finally {
      await relay.stop();
    }
    expect(relay.failed).toBe(0);
    expect(outbox.listFailed()).toEqual([]);
  });

  it('an outbox table made before failed rows existed gets their columns at open and keeps its pending rows', async () => {
    await broker.createTopic('orders', { partitions: 1 });
    // The table as an earlier release created it, with a pending row.
    db.exec(
      `CREATE TABLE wharf_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL,
         message TEXT NOT NULL, created_at INTEGER NOT NULL, sent_at INTEGER);
       CREATE INDEX wharf_outbox_pending ON wharf_outbox (id) WHERE sent_at IS NULL;`,
    );
    db.prepare('INSERT INTO wharf_outbox (destination, message, created_at) VALUES (?, ?, ?)').run(
      'orders',
      JSON.stringify({ id: 'm1', key: 'old', payload: 1 }),
      Date.now(),
    );
    const outbox = new SqliteOutbox(db);
    const columns = (db.prepare('PRAGMA table_info(wharf_outbox)').all() as Array<{ name: string }>).map((c) => c.name);
    expect(columns).toEqual(expect.arrayContaining(['failed_at', 'error']));
    new SqliteOutbox(db); // a second open leaves the table as it is
    const relay = outbox.relay(broker).start();
    try {
      await waitFor(() => pending(outbox) === 0, 5_000, 'the old row published');
    } finally {
      await relay.stop();
    }
    expect(await keysIn('orders', 1)).toEqual(['old']);
  });
});
