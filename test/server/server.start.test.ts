// startServer: both listeners up on the configured address, native connections visible in /metrics,
// a port in use fails with a clear UNAVAILABLE naming the flag to change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { mergeConfig } from '../../src/server/config.js';
import { startServer, type WharfServer } from '../../src/server/index.js';
import type { RawSettings } from '../../src/server/config.js';

const configOf = (flags: RawSettings) =>
  mergeConfig({
    flags: { inMemory: true, port: 0, httpPort: 0, logLevel: 'warn', ...flags },
    env: {},
    file: {},
    cwd: process.cwd(),
    fileDir: process.cwd(),
  });

let server: WharfServer;
beforeAll(async () => {
  server = await startServer(configOf({}));
});
afterAll(async () => {
  await server.close();
});

describe('startServer', () => {
  it('serves the native protocol and HTTP on 127.0.0.1; /metrics counts native connections and bytes', async () => {
    expect(server.nativeUrl).toMatch(/^wharf:\/\/127\.0\.0\.1:\d+$/);
    expect(server.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${server.httpUrl}/readyz`)).status).toBe(200);
    const client = await connect(server.nativeUrl);
    try {
      await client.createTopic('via-native', { partitions: 1 });
      await client.publish('via-native', { payload: 'hello' });
      const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
      expect(text).toContain('wharf_connections{listener="native"} 1');
      expect(text).toMatch(/wharf_bytes_received_total\{listener="native"\} [1-9]\d*/);
      expect(text).toContain('wharf_topic_messages{topic="via-native"} 1');
      const viaHttp = await (await fetch(`${server.httpUrl}/topics/via-native`)).json();
      expect(viaHttp).toMatchObject({ name: 'via-native', partitions: 1 });
    } finally {
      await client.close();
    }
  });

  it('a port in use fails with UNAVAILABLE naming the flag to change', async () => {
    const httpPort = Number(new URL(server.httpUrl).port);
    await expect(startServer(configOf({ httpPort }))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(/--http-port/),
    });
    const nativePort = Number(new URL(server.nativeUrl.replace('wharf:', 'http:')).port);
    await expect(startServer(configOf({ port: nativePort }))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(/--port/),
    });
  });

  it('an address it cannot listen on fails with UNAVAILABLE naming --host, not as an internal fault', async () => {
    // 192.0.2.1 (TEST-NET-1) is never an address of this machine.
    await expect(startServer(configOf({ host: '192.0.2.1' }))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(
        /cannot listen on 192\.0\.2\.1:0 for the native protocol: .*check --host and --port/,
      ),
    });
  });

  it('close() ends open event streams, finishes promptly and stops listening', async () => {
    const own = await startServer(configOf({}));
    await own.broker.createTopic('streamed', { partitions: 1 });
    const res = await fetch(`${own.httpUrl}/topics/streamed/events`);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read(); // ': connected'
    const t0 = Date.now();
    await own.close();
    expect(Date.now() - t0).toBeLessThan(5_000);
    let ended = false;
    while (!ended) ended = (await reader.read()).done;
    expect(ended).toBe(true);
    await expect(fetch(`${own.httpUrl}/healthz`)).rejects.toThrow();
  });
});
