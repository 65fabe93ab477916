// Remote producers and consumers ride through a server SIGKILL and restart on the same port: no
// confirmed message is lost, and publishes re-sent after the crash (stored or not before it) are
// stored once, because the producer id and sequence are stored in the record itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { killServerProcess, startServerProcess, type ServerProcess } from './server-process.js';

let server: ServerProcess | null = null;
let dir = '';

afterEach(async () => {
  if (server !== null) await killServerProcess(server);
  server = null;
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('remote client across a server crash', () => {
  it('publishes, subscriptions and consumers resume; nothing confirmed is lost or stored twice', async () => {
    dir = mkdtempSync(join(tmpdir(), 'wharf-crash-'));
    server = await startServerProcess(dir);
    const url = `wharf://127.0.0.1:${server.port}`;
    const producer = await connect(url, { reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 200 });
    const consumerClient = await connect(url, { reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 200 });
    await producer.createTopic('events', { partitions: 1 });
    await producer.createQueue('jobs', { visibilityTimeoutMs: 1_000 });

    const total = 2_000;
    const confirmedTopic = new Set<number>();
    const confirmedQueue = new Set<number>();
    const consumed = new Set<number>();
    const subscribed = new Set<number>();
    await consumerClient.consume('jobs', { concurrency: 8 }, (m) => {
      consumed.add((m.payload as { i: number }).i);
    });
    const sub = await consumerClient.subscribe('events', { group: 'g', from: 'earliest' }, (m) => {
      subscribed.add((m.payload as { i: number }).i);
    });

    // Pipelined: up to 100 of each in flight, the crash lands in the middle of the stream.
    let killed = false;
    let unconfirmedAtKill = new Set<number>();
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < total; i++) {
      const p = Promise.all([
        producer.publish('events', { payload: { i } }).then(() => confirmedTopic.add(i)),
        producer.publish('jobs', { payload: { i } }).then(() => confirmedQueue.add(i)),
      ]);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (inflight.size >= 100) await Promise.race(inflight);
      if (!killed && i === total / 2) {
        // Kill while frames are on the wire or being stored: some are stored but never confirmed,
        // so the client must re-send them after reconnecting.
        killed = true;
        const port = server.port;
        // One turn: this turn's frames reach the socket, their confirms cannot be back yet (a fixed
        // sleep let a faster server confirm the whole window first).
        await new Promise((r) => setImmediate(r));
        server.child.kill('SIGKILL');
        unconfirmedAtKill = new Set(Array.from({ length: i + 1 }, (_, k) => k).filter((k) => !confirmedTopic.has(k)));
        await killServerProcess(server);
        server = await startServerProcess(dir, port);
      }
    }
    await Promise.all(inflight);
    expect(confirmedTopic.size).toBe(total);
    expect(confirmedQueue.size).toBe(total);
    await until(() => consumed.size === total && subscribed.size === total, 20_000, 'consumers to catch up');

    // The topic log holds every message exactly once (an idempotent producer's retries were deduped).
    const stored: number[] = [];
    const reader = await producer.subscribe('events', { from: 'earliest' }, (m) => {
      stored.push((m.payload as { i: number }).i);
    });
    await until(() => stored.length >= total, 10_000, 'reading the topic back');
    await new Promise((r) => setTimeout(r, 100));
    await reader.close();
    // Every message is stored exactly once, also those unconfirmed when the server died.
    expect(new Set(stored).size).toBe(total);
    expect(stored.length).toBe(total);
    expect(unconfirmedAtKill.size).toBeGreaterThan(0); // the crash really hit publishes in flight
    const stats = await producer.stats('jobs');
    expect(stats.kind === 'queue' && stats.depth).toBe(0);
    await sub.close();
    await consumerClient.close();
    await producer.close();
  }, 60_000);
});
