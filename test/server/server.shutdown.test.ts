// Graceful shutdown of `wharf serve`: on SIGTERM it stops accepting, finishes in-flight publishes,
// fsyncs and exits 0; every publish that was answered 201 is in the data dir afterwards.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { serve, tempDir } from './serve-helpers.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

describe('wharf serve shutdown', () => {
  it('SIGTERM during publishing: exits 0 and every acknowledged message is intact after a restart', async () => {
    const dir = await tempDir();
    cleanup = dir.cleanup;
    // All three config sources through the real command: env (data dir), config file (native port, log level), flag (HTTP port).
    const configFile = join(dir.path, 'wharf.json');
    await writeFile(configFile, JSON.stringify({ port: 0, httpPort: 7412, logLevel: 'warn' }));
    const dataDir = join(dir.path, 'data');
    const s = await serve(['--config', configFile, '--http-port', '0'], { WHARF_DATA_DIR: dataDir });
    expect(s.output()).toContain(`wharf serving ${dataDir}`);
    expect(s.httpUrl).not.toMatch(/:7412$/);
    const post = (path: string, body: unknown) =>
      fetch(`${s.httpUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/topics', { name: 'ledger', partitions: 2 })).status).toBe(201);
    expect((await post('/queues', { name: 'work' })).status).toBe(201);
    expect((await post('/queues/work/messages', { payload: 'before' })).status).toBe(201);

    // A burst of publishes; SIGTERM lands while some are in flight.
    const acked: number[] = [];
    const inFlight = Array.from(
      { length: 60 },
      (_, i) =>
        post('/topics/ledger/messages', { key: `k${i}`, payload: { i } })
          .then((r) => {
            if (r.status === 201) acked.push(i);
          })
          .catch(() => undefined), // refused after shutdown began: never acknowledged
    );
    await new Promise((r) => setTimeout(r, 20));
    s.proc.kill('SIGTERM');
    await Promise.all(inFlight);
    expect(await s.exited).toBe(0);
    expect(s.output()).toContain('shutting down gracefully');
    expect(acked.length).toBeGreaterThan(0);

    const broker = await Broker.open({ dataDir });
    try {
      const stored: number[] = [];
      const sub = await broker.subscribe('ledger', { from: 'earliest' }, (m) => {
        stored.push((m.payload as { i: number }).i);
      });
      const stats = await broker.stats('ledger');
      const total = stats.kind === 'topic' ? stats.messages : -1;
      await expect.poll(() => stored.length).toBe(total);
      await sub.close();
      for (const i of acked) expect(stored).toContain(i);
      const [m] = await broker.receive('work', { max: 1 });
      expect(m.payload).toBe('before');
    } finally {
      await broker.close();
    }
  });
});
