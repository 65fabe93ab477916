// The outbox relay process is SIGKILLed after publishing a batch and before marking it sent. A new relay
// re-publishes those rows; the broker stores each message once thanks to the rows' dedupId.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, type QueueStats, type TopicMessage } from '../../src/broker/index.js';
import { connect } from '../../src/client/index.js';
import { DEFAULT_CONFIG, startServer, type WharfServer } from '../../src/server/index.js';
import { PostgresOutbox } from '../../src/patterns/index.js';
import { PG_URL, openPgFixture, type PgFixture } from './pg-helper.js';
import { waitFor } from './wait-for.js';

const child = fileURLToPath(new URL('./fixtures/outbox-relay-child.ts', import.meta.url));
const embeddedChild = fileURLToPath(new URL('./fixtures/outbox-relay-embedded-child.ts', import.meta.url));

/** Runs a child until it is SIGKILLed; returns its output. */
async function runUntilKilled(args: string[]): Promise<{ signal: NodeJS.Signals | null; out: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, sig) => resolve(sig)));
  return { signal, out };
}
let fx: PgFixture;
let server: WharfServer;
beforeAll(async () => {
  fx = await openPgFixture();
  server = await startServer({
    ...DEFAULT_CONFIG,
    inMemory: true,
    port: 0,
    httpPort: 0,
    maxBodyBytes: 4 * 1024 * 1024,
    logLevel: 'silent',
  });
});
afterAll(async () => {
  await server?.close();
  await fx?.drop();
});

describe('outbox relay killed between publish and mark', () => {
  it('relay process dies while the server keeps running: nothing lost, nothing stored twice', async () => {
    const outbox = new PostgresOutbox({ schema: fx.schema, table: 'outbox_crash' });
    await outbox.install(fx.pool);
    await server.broker.createQueue('shipments', { dedupWindowMs: 300_000 });
    const client = await fx.pool.connect();
    await client.query('BEGIN');
    for (let i = 1; i <= 5; i++)
      await outbox.add(client, { to: 'shipments', type: 'shipment.requested', key: `s${i}`, payload: { n: i } });
    await client.query('COMMIT');
    client.release();

    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', child, PG_URL, fx.schema, 'outbox_crash', server.nativeUrl],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, sig) => resolve(sig)));
    expect(signal, out).toBe('SIGKILL');
    expect(out).toContain('published');
    const pending = async () =>
      (await fx.pool.query(`SELECT count(*)::int AS c FROM ${outbox.qualifiedTable} WHERE sent_at IS NULL`)).rows[0]
        .c as number;
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

  it('with an embedded broker that dies too: after restart the rebuilt dedup window of the broker drops the re-published rows', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wharf-outbox-crash-'));
    try {
      const outbox = new PostgresOutbox({ schema: fx.schema, table: 'outbox_crash_embedded' });
      await outbox.install(fx.pool);
      const seed = await Broker.open({ dataDir });
      await seed.createTopic('orders', { partitions: 1 });
      await seed.close();
      const client = await fx.pool.connect();
      await client.query('BEGIN');
      for (let i = 1; i <= 5; i++)
        await outbox.add(client, { to: 'orders', type: 'order.created', key: `o${i}`, payload: { n: i } });
      await client.query('COMMIT');
      client.release();

      const { signal, out } = await runUntilKilled([
        embeddedChild,
        PG_URL,
        fx.schema,
        'outbox_crash_embedded',
        dataDir,
      ]);
      expect(signal, out).toBe('SIGKILL');
      expect(out).toContain('published');
      const pending = async () =>
        (await fx.pool.query(`SELECT count(*)::int AS c FROM ${outbox.qualifiedTable} WHERE sent_at IS NULL`)).rows[0]
          .c as number;
      expect(await pending()).toBe(5);

      const broker = await Broker.open({ dataDir });
      try {
        const relay = outbox.relay(fx.pool, broker, { pollIntervalMs: 50 }).start();
        await waitFor(async () => (await pending()) === 0, 15_000, 'the new relay marked every row');
        await relay.stop();
        const seen: TopicMessage[] = [];
        const sub = await broker.subscribe('orders', { from: 'earliest' }, (m) => void seen.push(m));
        await waitFor(() => seen.length >= 5, 10_000, 'five messages readable');
        await new Promise((r) => setTimeout(r, 200)); // a duplicate would arrive right behind
        await sub.close();
        expect(seen.map((m) => m.key)).toEqual(['o1', 'o2', 'o3', 'o4', 'o5']);
      } finally {
        await broker.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
