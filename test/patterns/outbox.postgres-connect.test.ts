// The PostgreSQL relay's wait for a pool connection is bounded (connectTimeoutMs): pg waits for ever by
// default, for a database that never answers or a pool whose connections are all in use. A wait that
// runs out is reported as TIMEOUT and retried, stop() returns within it, and a connection that arrives
// later goes back to the pool unused.
import { createServer, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WharfError } from '../../src/common/index.js';
import { PostgresOutbox, type OutboxRelay } from '../../src/patterns/index.js';
import { openPgFixture, type PgFixture } from './pg-helper.js';
import { RecordingPublisher } from './recording-publisher.js';
import { waitFor } from './wait-for.js';

let fx: PgFixture;
beforeAll(async () => {
  fx = await openPgFixture();
});
afterAll(async () => {
  await fx?.drop();
});

/** stop()'s outcome, or 'still waiting' after 3 s (a hang fails the test instead of timing it out). */
async function stopWithin3s(relay: OutboxRelay): Promise<{ outcome: string; tookMs: number }> {
  const startedMs = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    relay.stop().then(() => 'stopped'),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still waiting'), 3_000))),
  ]);
  clearTimeout(timer);
  return { outcome, tookMs: Date.now() - startedMs };
}

describe('PostgreSQL relay, waiting for a connection', () => {
  it('a database that accepts and never answers: each lock attempt ends at connectTimeoutMs as TIMEOUT, and stop() returns while one is under way', async () => {
    const sockets = new Set<Socket>();
    let accepted = 0;
    const silent = createServer((socket) => {
      accepted++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    // No connectionTimeoutMillis, pg's default: its connect waits for the server's answer for ever.
    const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', database: 'test', max: 2 });
    const errors: WharfError[] = [];
    const relay = new PostgresOutbox({ schema: fx.schema, table: 'never_reached' })
      .relay(pool, new RecordingPublisher(), {
        connectTimeoutMs: 200,
        retryDelayMs: 20,
        onError: (e) => errors.push(e),
      })
      .start();
    try {
      await waitFor(() => errors.length >= 1, 5_000, 'the first lock attempt to give up');
      expect(errors[0]).toMatchObject({
        code: 'TIMEOUT',
        message: expect.stringContaining('no connection from the PostgreSQL pool within 200 ms (connectTimeoutMs)'),
      });
      await waitFor(() => accepted >= 2, 5_000, 'the next lock attempt connecting');
      const stop = await stopWithin3s(relay);
      expect(stop.outcome).toBe('stopped');
      expect(stop.tookMs).toBeLessThan(1_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
      await relay.stop();
      await pool.end();
    }
  });

  it('a pool whose only connection the application holds: stop() returns, and the connection that comes later is released unused, without the lock', async () => {
    const outbox = new PostgresOutbox({ schema: fx.schema, table: 'outbox_busy_pool' });
    await outbox.install(fx.pool);
    const pool = new pg.Pool({ connectionString: fx.pool.options.connectionString, max: 1 });
    const app = await pool.connect();
    const relay = outbox.relay(pool, new RecordingPublisher(), { connectTimeoutMs: 200 }).start();
    let appReleased = false;
    try {
      await waitFor(() => pool.waitingCount === 1, 5_000, 'the relay waiting for a connection');
      const stop = await stopWithin3s(relay);
      expect(stop.outcome).toBe('stopped');
      expect(stop.tookMs).toBeLessThan(1_000);
      // The pool hands the connection to the relay's attempt, still queued in pg, which gives it back.
      app.release();
      appReleased = true;
      await waitFor(() => pool.waitingCount === 0 && pool.idleCount === 1, 5_000, 'the connection back in the pool');
      const back = await pool.connect();
      expect([back.listenerCount('error'), back.listenerCount('notification')]).toEqual([0, 0]);
      back.release();
      // It took no lock: another relay leads at once and publishes.
      const client = await fx.pool.connect();
      try {
        await client.query('BEGIN');
        await outbox.add(client, { to: 'orders', payload: 1 });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      const target = new RecordingPublisher();
      const next = outbox.relay(fx.pool, target, { pollIntervalMs: 50 }).start();
      try {
        await waitFor(() => next.published === 1, 10_000, 'the next relay publishing');
      } finally {
        await next.stop();
      }
    } finally {
      if (!appReleased) app.release();
      await relay.stop();
      await pool.end();
    }
  });

  it('refuses a connectTimeoutMs that is not a whole number of ms from 1 to 2^31 - 1', () => {
    const outbox = new PostgresOutbox({ schema: fx.schema, table: 'never_used' });
    for (const connectTimeoutMs of [0, 1.5, 2 ** 31, Number.NaN]) {
      expect(
        () => outbox.relay(fx.pool, new RecordingPublisher(), { connectTimeoutMs }),
        String(connectTimeoutMs),
      ).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/connectTimeoutMs/) }),
      );
    }
  });
});
