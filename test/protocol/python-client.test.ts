// docs/protocol.md promises a client in another language can be written from it alone. This runs
// one: a Python client (standard library only) written from the spec without reading the code, over
// an end-to-end scenario (handshake, queues, confirms, idempotent retry, credits, settle and nack,
// receive with receipts, topics and groups, errors). It fails if the server stops matching the spec.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';

const CLIENT = fileURLToPath(new URL('./fixtures/python_client.py', import.meta.url));

describe('a client written from the spec alone, in Python', () => {
  let dir: string;
  let broker: Broker;
  let server: NativeServer;
  beforeAll(async () => {
    const probe = spawnSync('python3', ['--version']);
    if (probe.error !== undefined || probe.status !== 0)
      throw new Error('python3 is needed for this test (Debian: apt-get install python3)');
    dir = mkdtempSync(join(tmpdir(), 'wharf-pyclient-'));
    broker = await Broker.open({ dataDir: dir, fsync: 'never' });
    server = await startNativeServer(broker, { port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs its end-to-end scenario against the server', async () => {
    const child = spawn('python3', [CLIENT, String(server.address().port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const last = out.trim().split('\n').at(-1) ?? '';
    const report = last.startsWith('{') ? (JSON.parse(last) as { ok?: boolean; failures?: unknown[] }) : {};
    expect({ code, failures: report.failures ?? [], stderr: err.slice(-2000) }).toEqual({
      code: 0,
      failures: [],
      stderr: '',
    });
    expect(report.ok).toBe(true);
  }, 60_000);
});
