// How a failing `wharf` command ends: `error CODE: message`, and for a client command a `fix:` line;
// `wharf serve` failures carry their own fix in the message, so no client-side fix contradicts it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WharfServer } from '../../src/server/index.js';
import { cli, startTestServer } from './cli-helpers.js';

let server: WharfServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

describe('wharf error output', () => {
  it('serve on a port in use says which port and how to fix it, without the client fix', async () => {
    const port = new URL(server.nativeUrl).port;
    const out = await cli(server, ['serve', '--in-memory', '--port', port, '--http-port', '0', '--log-level', 'warn']);
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(
      `error UNAVAILABLE: native port ${port} on 127.0.0.1 is in use; stop the other process or pass --port\n`,
    );
  });

  it('a client command that cannot reach its server still says to start one', async () => {
    const out = await cli(server, ['queues', 'list', '--url', 'wharf://127.0.0.1:1']);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^error UNAVAILABLE: .*\n {2}fix: is the server running\? start it with `wharf serve`/);
  });
});
