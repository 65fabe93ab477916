// connect() settles when the server's answer to HELLO cannot be read (a wrong service, a buggy
// peer): it rejects with PROTOCOL_ERROR instead of waiting for ever, as the handshake used to once
// its timeout was cleared, before the answer was decoded.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { OP, encodeFrame, encodeHelloOk } from '../../src/protocol/index.js';

const sockets: Socket[] = [];
let server: Server | null = null;
afterEach(() => {
  for (const s of sockets) s.destroy();
  server?.close();
});

/** A fake server answering HELLO with a HELLO_OK that carries one byte too many, then closing. */
async function listenWithBadHello(): Promise<number> {
  server = createServer((s) => {
    sockets.push(s);
    s.once('data', () => {
      const frame = encodeFrame(OP.HELLO_OK, 0, (w) => {
        encodeHelloOk(w, { version: 8, maxFrameBytes: 1 << 20, maxInFlight: 16, idleTimeoutMs: 0, serverName: 'x' });
        w.u8(0); // the byte decodeHelloOk refuses
      });
      s.write(frame);
      setTimeout(() => s.destroy(), 50);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server!.address() as { port: number }).port;
}

it('rejects with PROTOCOL_ERROR, within connectTimeoutMs, when the answer to HELLO cannot be read', async () => {
  const port = await listenWithBadHello();
  const outcome = await Promise.race([
    connect(`wharf://127.0.0.1:${port}`, { connectTimeoutMs: 300 }).then(
      async (c) => {
        await c.close();
        return 'connected';
      },
      (e: { code?: string; message?: string }) => `rejected ${e.code}: ${e.message}`,
    ),
    new Promise((resolve) => setTimeout(() => resolve('still pending after 2 s'), 2_000)),
  ]);
  expect(outcome).toMatch(/^rejected PROTOCOL_ERROR: the answer of wharf:\/\/127\.0\.0\.1:\d+ to HELLO cannot be read/);
});
