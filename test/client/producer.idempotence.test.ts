// Idempotent producers: a repeated (producerId, sequence) to a target is stored once, across a
// dropped connection and across a broker restart; the remote producer batches single publishes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { connect } from '../../src/client/index.js';
import { startNativeServer } from '../../src/server/native/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('idempotent producer', () => {
  it('a repeat of (producerId, sequence) resolves with the original result, even after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-idem-'));
    dirs.push(dir);
    let broker = await Broker.open({ dataDir: dir });
    await broker.createTopic('t', { partitions: 1 });
    const first = await broker.publish('t', [
      { producerId: 'p1', sequence: 0, payload: 'a' },
      { producerId: 'p1', sequence: 1, payload: 'b' },
    ]);
    const again = await broker.publish('t', [
      { producerId: 'p1', sequence: 1, payload: 'b' },
      { producerId: 'p1', sequence: 2, payload: 'c' },
    ]);
    expect(again[0]).toEqual({ ...first[1], duplicate: true, repeatedSequence: true });
    expect(again[1]).toMatchObject({ offset: 2 });
    await broker.close();
    broker = await Broker.open({ dataDir: dir });
    const afterRestart = await broker.publish('t', { producerId: 'p1', sequence: 0, payload: 'a' });
    expect(afterRestart).toEqual({ ...first[0], duplicate: true, repeatedSequence: true });
    const other = await broker.publish('t', { producerId: 'p2', sequence: 0, payload: 'x' });
    expect(other).toMatchObject({ offset: 3 });
    expect((await broker.stats('t')).kind === 'topic' && (await broker.stats('t'))).toMatchObject({
      partitions: [{ endOffset: 4 }],
    });
    await broker.close();
  });

  it('concurrent repeats of an in-flight sequence are stored once', async () => {
    const broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    const [a, b] = await Promise.all([
      broker.publish('q', { producerId: 'p', sequence: 7, payload: 1 }),
      broker.publish('q', { producerId: 'p', sequence: 7, payload: 1 }),
    ]);
    expect(b).toEqual({ ...a, duplicate: true, repeatedSequence: true });
    expect(((await broker.stats('q')) as { depth: number }).depth).toBe(1);
    await broker.close();
  });

  it('publishes in flight when the server drops the connection are re-sent and stored once', async () => {
    const broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    const server = await startNativeServer(broker, { port: 0 });
    const port = server.address().port;
    const client = await connect(`wharf://127.0.0.1:${port}`, { reconnectInitialDelayMs: 10 });
    const pending = Array.from({ length: 500 }, (_, i) => client.publish('q', { payload: i }));
    // Drop every server-side connection right after the frames went out, before all confirms arrive.
    await new Promise((r) => setImmediate(r));
    await server.close();
    const again = await startNativeServer(broker, { port });
    const results = await Promise.all(pending);
    expect(results).toHaveLength(500);
    const received = await broker.receive('q', { max: 1000 });
    expect(received.map((m) => m.payload).sort((x, y) => (x as number) - (y as number))).toEqual(
      Array.from({ length: 500 }, (_, i) => i),
    );
    await client.close();
    await again.close();
    await broker.close();
  });

  it('single publishes in one tick share one PUBLISH frame', async () => {
    const broker = await Broker.open({ inMemory: true });
    await broker.createQueue('q');
    const server = await startNativeServer(broker, { port: 0 });
    const client = await connect(`wharf://127.0.0.1:${server.address().port}`);
    const before = server.counters.framesIn;
    await Promise.all(Array.from({ length: 300 }, (_, i) => client.publish('q', { payload: i })));
    expect(server.counters.framesIn - before).toBe(1);
    await client.close();
    await server.close();
    await broker.close();
  });
});
