// What a newcomer does after `npm install`: start `wharf serve`, publish with `wharf publish`, read it back
// with `wharf consume --count 1`. Runs src/cli/main.ts through tsx (the same program `npm start` runs from
// dist after the `prepare` build), on ephemeral ports and a temp data dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, tempDir, wharf, type Served } from '../server/serve-helpers.js';

let server: Served;
let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
  server = await serve(['--data-dir', dir.path, '--port', '0', '--http-port', '0']);
});
afterAll(async () => {
  server.proc.kill('SIGTERM');
  await server.exited;
  await dir.cleanup();
});

describe('wharf command, first run', () => {
  it('publishes to a topic and consumes it back with --count 1, then exits 0', async () => {
    const env = { WHARF_URL: server.nativeUrl };
    const created = await wharf(['topics', 'create', 'orders', '--partitions', '1'], env);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'orders', partitions: 1 });

    const published = await wharf(
      ['publish', 'orders', '{"amount": 99.99}', '--key', 'order-456', '--type', 'order.created'],
      env,
    );
    expect(published.code).toBe(0);
    expect(JSON.parse(published.stdout)).toMatchObject({ partition: 0, offset: 0 });

    const consumed = await wharf(['consume', 'orders', '--count', '1', '--url', server.nativeUrl]);
    expect(consumed.code).toBe(0);
    const lines = consumed.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({
      key: 'order-456',
      type: 'order.created',
      payload: { amount: 99.99 },
      offset: 0,
    });
  });

  it('errors print the code and a fix and exit non-zero', async () => {
    const missing = await wharf(['topics', 'describe', 'nope'], { WHARF_URL: server.nativeUrl });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error NOT_FOUND: /);
    expect(missing.stderr).toMatch(/fix: /);
  });
});
