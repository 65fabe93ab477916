// The server's logger serves the HTTP API too: at `debug` (or `trace`) one line per request, at
// `info` none (a broker answers many small requests), and errors at any level that shows them.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { mergeConfig } from '../../src/server/config.js';
import { startServer } from '../../src/server/index.js';
import { buildHttpApp } from '../../src/server/http/app.js';
import type { HttpBroker } from '../../src/server/http/broker-port.js';

interface LogLine {
  msg?: string;
  level?: number;
  req?: { url?: string };
  res?: { statusCode?: number };
  err?: { message?: string };
}

/** A pino logger at `level` whose lines, parsed, land in `lines`. */
function capturingLogger(level: string): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

/** Starts a server whose log lines (parsed) land in the returned array; runs fn, then closes it. */
async function withLoggedServer(level: string, fn: (httpUrl: string) => Promise<void>): Promise<LogLine[]> {
  const { logger, lines } = capturingLogger(level);
  const config = mergeConfig({
    flags: { inMemory: true, port: 0, httpPort: 0, logLevel: level },
    env: {},
    file: {},
    cwd: process.cwd(),
    fileDir: process.cwd(),
  });
  const server = await startServer(config, { logger });
  try {
    await fn(server.httpUrl);
  } finally {
    await server.close();
  }
  return lines;
}

const requestLines = (lines: LogLine[]): LogLine[] =>
  lines.filter((l) => l.msg === 'request completed' || l.msg === 'incoming request');

describe('the HTTP request log under the server', () => {
  it('logs each request at level debug, with its url and status', async () => {
    const lines = await withLoggedServer('debug', async (url) => {
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/queues/missing`)).status).toBe(404);
    });
    const requests = requestLines(lines);
    expect(requests.some((l) => l.req?.url === '/healthz')).toBe(true);
    expect(requests.some((l) => l.res?.statusCode === 404)).toBe(true);
  });

  it('logs no request lines at level info, but still its own start line', async () => {
    const lines = await withLoggedServer('info', async (url) => {
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    });
    expect(requestLines(lines)).toEqual([]);
    expect(lines.some((l) => l.msg === 'wharf listening')).toBe(true);
  });

  it('logs a request that failed inside the server (500) at level error, with its cause; not a refusal (404)', async () => {
    const { logger, lines } = capturingLogger('info');
    // Every broker call fails as a bug would: with a plain Error, not a WharfError.
    const failing = new Proxy(
      {},
      {
        get: () => () => {
          throw new Error('disk on fire');
        },
      },
    ) as HttpBroker;
    const { app } = await buildHttpApp(failing, { maxBodyBytes: 1024, logger });
    try {
      expect((await app.inject({ method: 'GET', url: '/topics' })).statusCode).toBe(500);
      expect((await app.inject({ method: 'GET', url: '/no-such-route' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
    const errors = lines.filter((l) => l.msg === 'request failed');
    expect(errors).toHaveLength(1);
    expect(errors[0].level).toBe(50); // pino's error
    expect(errors[0].err?.message).toBe('disk on fire');
  });
});
