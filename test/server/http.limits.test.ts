// HTTP limits: a connection over maxConnections, an idle connection and an oversized body each get a
// clear error while other clients are unaffected.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpFixture, listen, type HttpFixture } from './http-helpers.js';

let f: HttpFixture | null = null;
afterEach(async () => {
  await f?.close();
  f = null;
});

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends one keep-alive GET and resolves with the raw response text once it is complete. */
function get(socket: Socket, path: string): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString();
      const m = /content-length: (\d+)/i.exec(text);
      const headEnd = text.indexOf('\r\n\r\n');
      if (m && headEnd >= 0 && Buffer.byteLength(text.slice(headEnd + 4)) >= Number(m[1])) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
    socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\n\r\n`);
  });
}

const portOf = (base: string): number => Number(new URL(base).port);

describe('HTTP limits', () => {
  it('a connection over maxConnections gets 503 UNAVAILABLE and is closed; the others keep working', async () => {
    f = await httpFixture({ maxConnections: 2 });
    const port = portOf(await listen(f));
    const a = await openSocket(port);
    const b = await openSocket(port);
    expect(await get(a, '/healthz')).toMatch(/^HTTP\/1.1 200/);
    const c = await openSocket(port);
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    const refused = await get(c, '/healthz');
    expect(refused).toMatch(/^HTTP\/1.1 503/);
    expect(refused).toMatch(/retry-after: 1/i);
    expect(refused).toContain('"code":"UNAVAILABLE"');
    expect(refused).toContain('maxConnections');
    await closed;
    expect(await get(b, '/healthz')).toMatch(/^HTTP\/1.1 200/);
    expect(await get(a, '/healthz')).toMatch(/^HTTP\/1.1 200/);
    expect((await f.app.inject({ url: '/metrics' })).body).toMatch(/wharf_connections_rejected\{listener="http"\} 1/);
    a.destroy();
    b.destroy();
  });

  it('closes a connection idle for idleTimeoutMs', async () => {
    f = await httpFixture({ idleTimeoutMs: 300 });
    const port = portOf(await listen(f));
    const s = await openSocket(port);
    const t0 = Date.now();
    expect(await get(s, '/healthz')).toMatch(/^HTTP\/1.1 200/);
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('a body over maxBodyBytes gets 413 MESSAGE_TOO_LARGE and nothing is stored', async () => {
    f = await httpFixture({ maxBodyBytes: 1024 });
    await f.broker.createTopic('capped', { partitions: 1 });
    const res = await f.app.inject({
      method: 'POST',
      url: '/topics/capped/messages',
      payload: { payload: 'y'.repeat(4096) },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('MESSAGE_TOO_LARGE');
    const s = await f.broker.stats('capped');
    expect(s.kind === 'topic' && s.messages).toBe(0);
    const ok = await f.app.inject({ method: 'POST', url: '/topics/capped/messages', payload: { payload: 'small' } });
    expect(ok.statusCode).toBe(201);
  });

  it('a name of the longest allowed length reaches every /{name} route; a longer one is 400, as is a malformed URL, in the API error body', async () => {
    f = await httpFixture();
    const name = 'q'.repeat(249);
    expect((await f.app.inject({ method: 'POST', url: '/queues', payload: { name } })).statusCode).toBe(201);
    expect((await f.app.inject({ method: 'GET', url: `/queues/${name}` })).statusCode).toBe(200);
    const published = await f.app.inject({ method: 'POST', url: `/queues/${name}/messages`, payload: { payload: 1 } });
    expect(published.statusCode).toBe(201);
    const received = await f.app.inject({ method: 'POST', url: `/queues/${name}/receive`, payload: {} });
    expect(received.json().messages.map((m: { payload: unknown }) => m.payload)).toEqual([1]);
    expect((await f.app.inject({ method: 'GET', url: `/stats/${name}` })).statusCode).toBe(200);
    expect((await f.app.inject({ method: 'DELETE', url: `/queues/${name}` })).statusCode).toBe(204);
    const tooLong = await f.app.inject({ method: 'GET', url: `/queues/${'q'.repeat(250)}` });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().error.code).toBe('INVALID_ARGUMENT');
    const malformed = await f.app.inject({ method: 'GET', url: '/queues/x%ZZ' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.any(String) as unknown });
  });

  it('a long poll longer than idleTimeoutMs is answered, not cut off by the idle timeout', async () => {
    f = await httpFixture({ idleTimeoutMs: 300 });
    const base = await listen(f);
    await f.broker.createQueue('slow', { visibilityTimeoutMs: 60_000 });
    setTimeout(() => void f!.broker.publish('slow', { payload: 'late' }), 800);
    const res = await fetch(`${base}/queues/slow/receive`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ waitMs: 1500 }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { messages: Array<{ payload: unknown }> }).messages.map((m) => m.payload)).toEqual([
      'late',
    ]);
  });
});
