// Remote consumers settle in batches (SETTLE_BATCH: runs of delivery ids plus the spent credits):
// every handled message is acked once, failures still retry, and a long backlog of synchronous
// handlers behind a small concurrency runs in a loop, not a recursion.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  serverOptions: { maxProtocolVersion?: number } = {},
): Promise<{ client: RemoteWharf; server: NativeServer }> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-settle-'));
  const broker = await Broker.open({ dataDir: dir, fsync: 'never' });
  const server = await startNativeServer(broker, { port: 0, ...serverOptions });
  const client = await connect(`wharf://127.0.0.1:${server.address().port}`);
  cleanups.push(async () => {
    await client.close();
    await server.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { client, server };
}

function until(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = (): void => (check() ? resolve() : void setTimeout(poll, 5));
    poll();
  });
}

describe('remote consumer settlement', () => {
  it('20,000 synchronous handlers behind concurrency 1 each run once and leave the queue empty', async () => {
    const { client } = await setup();
    await client.createQueue('q');
    const total = 20_000;
    for (let base = 0; base < total; base += 5_000) {
      await client.publish(
        'q',
        Array.from({ length: 5_000 }, (_, i) => ({ payload: { i: base + i } })),
      );
    }
    const seen = new Map<number, number>();
    const consumer = await client.consume('q', { concurrency: 1, prefetch: 5_000 }, (m) => {
      const i = (m.payload as { i: number }).i;
      seen.set(i, (seen.get(i) ?? 0) + 1);
    });
    await until(() => seen.size === total);
    await consumer.close();
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    const stats = await client.stats('q');
    expect(stats.kind === 'queue' && [stats.depth, stats.inFlight]).toEqual([0, 0]);
  }, 60_000);

  for (const [label, serverOptions] of [
    ['', {}],
    [' (server pinned to protocol version 1: SETTLE + CREDIT)', { maxProtocolVersion: 1 }],
  ] as const) {
    it(`successes and failures mixed in one turn: failures come back with deliveryCount 2, the rest are acked${label}`, async () => {
      const { client } = await setup(serverOptions);
      await client.createQueue('q', { retry: { initialDelayMs: 1, maxDelayMs: 1 } });
      await client.publish(
        'q',
        Array.from({ length: 100 }, (_, i) => ({ payload: { i } })),
      );
      const counts = new Map<number, number[]>();
      const consumer = await client.consume('q', { concurrency: 10, prefetch: 100 }, (m) => {
        const i = (m.payload as { i: number }).i;
        counts.set(i, [...(counts.get(i) ?? []), m.deliveryCount]);
        if (i % 7 === 0 && m.deliveryCount === 1) throw new Error(`fail ${i}`);
      });
      await until(() => counts.size === 100 && [...counts].every(([i, c]) => c.length === (i % 7 === 0 ? 2 : 1)));
      await consumer.close();
      for (const [i, c] of counts) expect(c).toEqual(i % 7 === 0 ? [1, 2] : [1]);
      const stats = await client.stats('q');
      expect(stats.kind === 'queue' && [stats.depth, stats.inFlight]).toEqual([0, 0]);
    }, 60_000);
  }

  it('a version 2 client against a server pinned to version 1 settles with SETTLE + CREDIT: 5,000 messages, each once', async () => {
    const { client } = await setup({ maxProtocolVersion: 1 });
    await client.createQueue('q');
    await client.publish(
      'q',
      Array.from({ length: 5_000 }, (_, i) => ({ payload: { i } })),
    );
    const seen = new Map<number, number>();
    const consumer = await client.consume('q', { concurrency: 8, prefetch: 64 }, (m) => {
      const i = (m.payload as { i: number }).i;
      seen.set(i, (seen.get(i) ?? 0) + 1);
    });
    await until(() => seen.size === 5_000);
    await consumer.close();
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    const stats = await client.stats('q');
    expect(stats.kind === 'queue' && [stats.depth, stats.inFlight]).toEqual([0, 0]);
  }, 60_000);

  it('a consumer whose queue is gone when it resubscribes after a reconnect ends with NOT_FOUND; the others resume', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-settle-'));
    const broker = await Broker.open({ dataDir: dir, fsync: 'never' });
    let server = await startNativeServer(broker, { port: 0 });
    const port = server.address().port;
    const client = await connect(`wharf://127.0.0.1:${port}`);
    cleanups.push(async () => {
      await client.close();
      await server.close();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    });
    for (const name of ['x', 'q', 'other']) await client.createQueue(name);
    // Ids 1, 2, 3 on the first connection; x closes, so after the reconnect q's failed CONSUME and
    // other's take ids 1 and 2 of the new connection: q's old id then names other's new flow.
    const x = await client.consume('x', {}, () => undefined);
    const consumer = await client.consume('q', {}, () => undefined);
    const got: unknown[] = [];
    const survivor = await client.consume('other', {}, (m) => void got.push(m.payload));
    await x.close();
    await server.close(); // the client loses its connection and starts reconnecting
    await broker.deleteQueue('q');
    server = await startNativeServer(broker, { port });
    expect(await consumer.ended).toMatchObject({ code: 'NOT_FOUND' });
    await broker.publish('other', { payload: 'after the reconnect' });
    for (let i = 0; i < 300 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual(['after the reconnect']);
    await survivor.close();
  });

  it('a consumer ended in the chunk of its SUBSCRIBED is not kept for resubscribing', async () => {
    const { client } = await setup();
    for (let i = 0; i < 20; i++) {
      await client.createQueue(`brief-${i}`);
      const consuming = client.consume(`brief-${i}`, {}, () => undefined);
      const deleting = client.deleteQueue(`brief-${i}`);
      const c = await consuming;
      await deleting;
      expect(await c.ended).toMatchObject({ code: 'NOT_FOUND' });
    }
    expect((client as unknown as { allFlows: Set<unknown> }).allFlows.size).toBe(0);
  });
});
