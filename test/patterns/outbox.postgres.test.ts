// Transactional outbox on the real PostgreSQL: publication follows commit, order is kept, NOTIFY wakes the relay,
// and a relay that dies between publishing and marking causes no loss and (with dedupId) no duplicate.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, type TopicMessage } from '../../src/broker/index.js';
import type { WharfError } from '../../src/common/index.js';
import { PostgresOutbox } from '../../src/patterns/index.js';
import pg from 'pg';
import { PG_URL, openPgFixture, type PgFixture } from './pg-helper.js';
import { RecordingPublisher } from './recording-publisher.js';
import { waitFor } from './wait-for.js';

let fx: PgFixture;
let n = 0;

beforeAll(async () => {
  fx = await openPgFixture();
});
afterAll(async () => {
  await fx?.drop();
});

async function freshOutbox(): Promise<PostgresOutbox> {
  const outbox = new PostgresOutbox({ schema: fx.schema, table: `outbox_${++n}` });
  await fx.pool.query(`CREATE TABLE "${fx.schema}".orders_${n} (id text PRIMARY KEY, amount numeric)`);
  await outbox.install(fx.pool);
  return outbox;
}

/** The user's own transaction: a business row and an outbox row, committed or rolled back together. */
async function placeOrder(outbox: PostgresOutbox, id: string, commit = true): Promise<void> {
  const client = await fx.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`INSERT INTO "${fx.schema}".orders_${n} (id, amount) VALUES ($1, 10)`, [id]);
    await outbox.add(client, { to: 'orders', type: 'order.created', key: id, payload: { orderId: id } });
    await client.query(commit ? 'COMMIT' : 'ROLLBACK');
  } finally {
    client.release();
  }
}

/** Listeners on each of the pool's connections, checked out together (a pooled client outlives a relay's use of it). */
async function listenersOnPool(pool: pg.Pool, max: number): Promise<Array<{ error: number; notification: number }>> {
  const clients = await Promise.all(Array.from({ length: max }, () => pool.connect()));
  const counts = clients.map((c) => ({
    error: c.listenerCount('error'),
    notification: c.listenerCount('notification'),
  }));
  for (const c of clients) c.release();
  return counts;
}

async function pendingCount(outbox: PostgresOutbox): Promise<number> {
  const r = await fx.pool.query(`SELECT count(*)::int AS c FROM ${outbox.qualifiedTable} WHERE sent_at IS NULL`);
  return r.rows[0].c;
}

describe('PostgreSQL outbox', () => {
  it('publishes committed messages in order and never a rolled-back one, then marks them sent', async () => {
    const outbox = await freshOutbox();
    await placeOrder(outbox, 'o1');
    await placeOrder(outbox, 'o2', false);
    await placeOrder(outbox, 'o3');
    const target = new RecordingPublisher();
    const relay = outbox.relay(fx.pool, target, { pollIntervalMs: 50 }).start();
    try {
      await waitFor(() => target.stored.length >= 2, 10_000, 'two publications');
      await waitFor(async () => (await pendingCount(outbox)) === 0, 10_000, 'rows marked sent');
      expect(target.stored.map((s) => [s.to, (s.message.payload as { orderId: string }).orderId])).toEqual([
        ['orders', 'o1'],
        ['orders', 'o3'],
      ]);
      const first = target.stored[0].message;
      expect(first.producerId).toBe(relay.relayId);
      expect(first.dedupId).toMatch(new RegExp(`^${relay.relayId.replace(/\./g, '\\.')}:\\d+$`));
      expect(typeof first.id).toBe('string');
    } finally {
      await relay.stop();
    }
  });

  it('wakes on NOTIFY at commit instead of waiting for the next poll', async () => {
    const outbox = await freshOutbox();
    const target = new RecordingPublisher();
    const relay = outbox.relay(fx.pool, target, { pollIntervalMs: 60_000 }).start();
    try {
      await new Promise((r) => setTimeout(r, 300)); // the relay is now idle, waiting up to 60 s
      await placeOrder(outbox, 'late');
      await waitFor(() => target.stored.length === 1, 5_000, 'publication woken by NOTIFY');
    } finally {
      await relay.stop();
    }
  });

  it('retries a failed publish without reordering', async () => {
    const outbox = await freshOutbox();
    for (const id of ['a', 'b', 'c']) await placeOrder(outbox, id);
    const target = new RecordingPublisher();
    target.failNext = 2;
    const errors: string[] = [];
    const relay = outbox
      .relay(fx.pool, target, { pollIntervalMs: 50, retryDelayMs: 10, onError: (e) => errors.push(e.code) })
      .start();
    try {
      await waitFor(async () => (await pendingCount(outbox)) === 0, 10_000, 'all sent');
      expect(errors.length).toBe(2);
      expect(target.stored.map((s) => s.message.key)).toEqual(['a', 'b', 'c']);
    } finally {
      await relay.stop();
    }
  });

  it('a relay that dies between publishing and marking leaves rows the next relay re-publishes once (dedupId)', async () => {
    const outbox = await freshOutbox();
    for (const id of ['x1', 'x2', 'x3']) await placeOrder(outbox, id);
    const target = new RecordingPublisher();
    // The first relay has its own connections, so its "death" can be made real: its backends are terminated.
    const appName = `wharf-dying-relay-${n}`;
    const dyingPool = new pg.Pool({ connectionString: PG_URL, application_name: appName, max: 3 });
    dyingPool.on('error', () => undefined);
    let crashed!: () => void;
    const crash = new Promise<void>((r) => (crashed = r));
    outbox
      .relay(dyingPool, target, {
        pollIntervalMs: 50,
        afterPublish: () => {
          crashed();
          return new Promise(() => undefined); // never marks: the process "died" here
        },
      })
      .start();
    await crash;
    expect(target.stored.length).toBe(3);
    expect(await pendingCount(outbox)).toBe(3);
    await fx.pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
      appName,
    ]);
    await placeOrder(outbox, 'x4');
    const second = outbox.relay(fx.pool, target, { pollIntervalMs: 50 }).start();
    try {
      await waitFor(async () => (await pendingCount(outbox)) === 0, 10_000, 'second relay drained the outbox');
      expect(target.stored.map((s) => s.message.key)).toEqual(['x1', 'x2', 'x3', 'x4']);
      expect(second.published).toBe(4);
    } finally {
      await second.stop();
    }
  });

  it('only one relay publishes a table at a time; a standby takes over when it stops', async () => {
    const outbox = await freshOutbox();
    const target = new RecordingPublisher();
    const a = outbox.relay(fx.pool, target, { pollIntervalMs: 50 }).start();
    // a is the active relay once it has published something (a fixed wait was too short on a busy host).
    await placeOrder(outbox, 'p0');
    await waitFor(() => a.published === 1, 10_000, 'the first relay to become active');
    const b = outbox.relay(fx.pool, target, { pollIntervalMs: 50 }).start();
    for (const id of ['p1', 'p2']) await placeOrder(outbox, id);
    await waitFor(async () => (await pendingCount(outbox)) === 0, 10_000, 'sent by the active relay');
    expect(a.published).toBe(3);
    expect(b.published).toBe(0);
    await a.stop();
    await placeOrder(outbox, 'p3');
    await waitFor(() => b.published === 1, 10_000, 'standby took over');
    await b.stop();
    expect(target.stored.map((s) => s.message.key)).toEqual(['p0', 'p1', 'p2', 'p3']);
  });

  it('a relay whose lock attempts find no free connection keeps trying, reports each failure, and publishes once one is free', async () => {
    const outbox = await freshOutbox();
    await placeOrder(outbox, 'late-start');
    // The relay needs two connections (its lock and its queries); the application holds both for now,
    // and a checkout gives up after 100 ms.
    const pool = new pg.Pool({ connectionString: PG_URL, max: 2, connectionTimeoutMillis: 100 });
    const busy = await Promise.all([pool.connect(), pool.connect()]);
    const target = new RecordingPublisher();
    const errors: string[] = [];
    const relay = outbox
      .relay(pool, target, { pollIntervalMs: 50, retryDelayMs: 20, onError: (e) => errors.push(e.message) })
      .start();
    try {
      await waitFor(() => errors.length >= 2, 10_000, 'two failed lock attempts');
      expect(errors[0]).toMatch(/timeout/);
      expect(target.stored.length).toBe(0);
      for (const c of busy.splice(0)) c.release();
      await waitFor(async () => (await pendingCount(outbox)) === 0, 10_000, 'published once the connection is free');
      expect(target.stored.map((s) => s.message.key)).toEqual(['late-start']);
    } finally {
      for (const c of busy) c.release();
      await relay.stop();
      await pool.end();
    }
  });

  it("a standby's failed lock attempts and a stopped relay leave no listeners on the pool's connections", async () => {
    const outbox = await freshOutbox();
    const target = new RecordingPublisher();
    const leaderPool = new pg.Pool({ connectionString: PG_URL, max: 2 }); // the lock connection and one for queries
    const standbyPool = new pg.Pool({ connectionString: PG_URL, max: 1 });
    const a = outbox.relay(leaderPool, target, { pollIntervalMs: 50 }).start();
    const b = outbox.relay(standbyPool, target, { pollIntervalMs: 50 });
    try {
      await placeOrder(outbox, 'p0');
      await waitFor(() => a.published === 1, 10_000, 'the first relay to become active');
      let lockAttempts = 0;
      standbyPool.on('release', () => lockAttempts++);
      b.start();
      await waitFor(() => lockAttempts >= 2, 10_000, 'two lock attempts of the standby');
      await b.stop();
      expect(await listenersOnPool(standbyPool, 1)).toEqual([{ error: 0, notification: 0 }]);
      await a.stop();
      expect(await listenersOnPool(leaderPool, 2)).toEqual([
        { error: 0, notification: 0 },
        { error: 0, notification: 0 },
      ]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await Promise.all([leaderPool.end(), standbyPool.end()]);
    }
  });
});

describe('PostgreSQL outbox rows the broker would refuse', () => {
  it('add() refuses an invalid message in the user transaction and writes nothing: the transaction commits without it', async () => {
    const outbox = await freshOutbox();
    const client = await fx.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO "${fx.schema}".orders_${n} (id, amount) VALUES ('o1', 10)`);
      const refused = await outbox.add(client, { to: 'orders', headers: { n: 1 } as never }).catch((e) => e);
      expect(refused).toMatchObject({ code: 'INVALID_ARGUMENT', message: /headers\["n"\]/ });
      await client.query('COMMIT'); // a row add() had written would be committed with the order
    } finally {
      client.release();
    }
    const rows = await fx.pool.query(`SELECT count(*)::int AS c FROM ${outbox.qualifiedTable}`);
    expect(rows.rows[0].c).toBe(0);
  });

  it('a row refused for good is set aside and later rows go on; it can be listed, retried and deleted', async () => {
    const outbox = await freshOutbox();
    const broker = await Broker.open({ inMemory: true });
    try {
      await broker.createTopic('orders', { partitions: 1 });
      const client = await fx.pool.connect();
      await client.query('BEGIN');
      await outbox.add(client, { to: 'orders', key: 'o1', payload: 1 });
      await outbox.add(client, { to: 'orders', key: 'bad-partition', partition: 2, payload: 2 });
      await outbox.add(client, { to: 'orders', key: 'bad-too', partition: 3, payload: 3 });
      await outbox.add(client, { to: 'orders', key: 'o4', payload: 4 });
      await client.query('COMMIT');
      client.release();
      const errors: WharfError[] = [];
      const relay = outbox
        .relay(fx.pool, broker, { pollIntervalMs: 50, retryDelayMs: 10, onError: (e) => errors.push(e) })
        .start();
      try {
        await waitFor(() => relay.published === 2 && relay.failed === 2, 10_000, 'two sent, two failed');
        expect(await pendingCount(outbox)).toBe(2); // failed rows are not sent
        expect(errors.map((e) => [e.code, e.details?.outboxRowId])).toEqual([
          ['INVALID_ARGUMENT', 2],
          ['INVALID_ARGUMENT', 3],
        ]);
        const failed = await outbox.listFailed(fx.pool);
        expect(failed.map((r) => [r.id, r.to, r.message.key])).toEqual([
          [2, 'orders', 'bad-partition'],
          [3, 'orders', 'bad-too'],
        ]);
        expect(failed[0].error).toMatch(/^INVALID_ARGUMENT: .*partition 2 does not exist/);
        expect(failed[0].failedAt).toBeInstanceOf(Date);
        expect(await outbox.listFailed(fx.pool, 1)).toHaveLength(1);
        expect(await outbox.prune(fx.pool, -60_000)).toBe(2); // sent rows only
        expect(await outbox.deleteFailed(fx.pool, [3])).toBe(1);
        // The cause fixed (here: the topic re-created with enough partitions), the row is retried.
        await broker.deleteTopic('orders');
        await broker.createTopic('orders', { partitions: 4 });
        expect(await outbox.retryFailed(fx.pool, [2, 4])).toBe(1);
        await waitFor(() => relay.published === 3, 10_000, 'the retried row published');
        expect(await outbox.listFailed(fx.pool)).toEqual([]);
      } finally {
        await relay.stop();
      }
      const seen: TopicMessage[] = [];
      const sub = await broker.subscribe('orders', { from: 'earliest' }, (m) => void seen.push(m));
      await waitFor(() => seen.length === 1, 5_000, 'the retried row in the new topic');
      await sub.close();
      expect(seen[0].key).toBe('bad-partition');
    } finally {
      await broker.close();
    }
  });

  it('a table made before failed rows existed: the relay adds their columns at open and publishes its rows', async () => {
    const outbox = new PostgresOutbox({ schema: fx.schema, table: `outbox_old_${++n}` });
    // The table as an earlier release installed it, with a pending row.
    await fx.pool.query(
      `CREATE TABLE ${outbox.qualifiedTable} (id bigserial PRIMARY KEY, destination text NOT NULL,
         message jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz)`,
    );
    await fx.pool.query(`INSERT INTO ${outbox.qualifiedTable} (destination, message) VALUES ('orders', $1)`, [
      JSON.stringify({ id: 'm1', key: 'old', payload: 1 }),
    ]);
    const target = new RecordingPublisher();
    const relay = outbox.relay(fx.pool, target, { pollIntervalMs: 50 }).start();
    try {
      await waitFor(() => target.stored.length === 1, 10_000, 'the old row published');
    } finally {
      await relay.stop();
    }
    const columns = await fx.pool.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
      [fx.schema, `outbox_old_${n}`],
    );
    expect(columns.rows.map((r) => r.column_name)).toEqual(expect.arrayContaining(['failed_at', 'error']));
    await outbox.install(fx.pool); // install() on the upgraded table changes nothing
    expect(await outbox.listFailed(fx.pool)).toEqual([]);
  });

  it('the upgrade of an old table gives up behind an open application transaction, is reported and retried', async () => {
    const outbox = new PostgresOutbox({ schema: fx.schema, table: `outbox_old_${++n}` });
    await fx.pool.query(
      `CREATE TABLE ${outbox.qualifiedTable} (id bigserial PRIMARY KEY, destination text NOT NULL,
         message jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz)`,
    );
    // The application's transaction holds a lock on the table that ALTER TABLE must wait for.
    const app = await fx.pool.connect();
    await app.query('BEGIN');
    await app.query(`INSERT INTO ${outbox.qualifiedTable} (destination, message) VALUES ('orders', $1)`, [
      JSON.stringify({ id: 'm1', key: 'in-flight', payload: 1 }),
    ]);
    const target = new RecordingPublisher();
    const errors: string[] = [];
    const relay = outbox
      .relay(fx.pool, target, { pollIntervalMs: 50, retryDelayMs: 10, onError: (e) => errors.push(e.message) })
      .start();
    try {
      await waitFor(() => errors.length >= 1, 10_000, 'the upgrade giving up');
      expect(errors[0]).toMatch(/lock timeout/);
      await app.query('COMMIT');
      await waitFor(() => target.stored.length === 1, 10_000, 'the row published after the upgrade');
    } finally {
      app.release();
      await relay.stop();
    }
  });
});
