// The outbox relay process is SIGKILLed after publishing a batch and before marking it sent. A new relay
// re-publishes those rows; the broker stores each message once thanks to the rows' dedupId.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueStats } from '../../src/broker/index.js';
import { connect } from '../../src/client/index.js';
import { DEFAULT_CONFIG, startServer, type WharfServer } from '../../src/server/index.js';
import { PostgresOutbox } from '../../src/patterns/index.js';
import { PG_URL, openPgFixture, type PgFixture } from './pg-helper.js';
import { waitFor } from './wait-for.js';

const child = fileURLToPath(new URL('./fixtures/outbox-relay-child.ts', import.meta.url));
let fx: PgFixture;
let server: WharfServer;
beforeAll(async () => {
  fx = await openPgFixture();
  server = await startServer({ ...DEFAULT_CONFIG, inMemory: true, port: 0, httpPort: 0, maxBodyBytes: 4 * 1024 * 1024, logLevel: 'silent' });
});
afterAll(async () => {
  await server?.close();
  await fx?.drop();
});

describe('outbox relay killed between publish and mark', () => {
  it('loses nothing and stores nothing twice', async () => {
    const outbox = new PostgresOutbox({ schema: fx.schema, table: 'outbox_crash' });
    await outbox.install(fx.pool);
    await server.broker.createQueue('shipments', { dedupWindowMs: 300_000 });
    const client = await fx.pool.connect();
    await client.query('BEGIN');
    for (let i = 1; i <= 5; i++) await outbox.add(client, { to: 'shipments', type: 'shipment.requested', key: `s${i}`, payload: { n: i } });
    await client.query('COMMIT');
    client.release();

    const proc = spawn(process.execPath, ['--import', 'tsx', child, PG_URL, fx.schema, 'outbox_crash', server.nativeUrl], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, sig) => resolve(sig)));
    expect(signal, out).toBe('SIGKILL');
    expect(out).toContain('published');
    const pending = async () =>
      (await fx.pool.query(`SELECT count(*)::int AS c FROM ${outbox.qualifiedTable} WHERE sent_at IS NULL`)).rows[0].c as number;
    expect(await pending()).toBe(5); // published, never marked
    expect(((await server.broker.stats('shipments')) as QueueStats).depth).toBe(5); // the batch did reach the broker

    const wharf = await connect(server.nativeUrl);
    try {
      const relay = outbox.relay(fx.pool, wharf, { pollIntervalMs: 50 }).start();
      await waitFor(async () => (await pending()) === 0, 15_000, 'the new relay marked every row');
      await relay.stop();
      const got = await server.broker.receive('shipments', { max: 100, waitMs: 200 });
      expect(got.map((m) => m.key)).toEqual(['s1', 's2', 's3', 's4', 's5']);
      expect(new Set(got.map((m) => m.dedupId)).size).toBe(5);
    } finally {
      await wharf.close();
    }
  });
});
