// A `wharf` whose stdout stops taking lines (its reader went away: `| head`, EPIPE) settles nothing it did
// not print: a queue message goes back, a group commits only what was printed, and the command ends
// quietly with exit 0; any other write failure is reported with exit 1.
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WharfServer } from '../../src/server/index.js';
import { MAIN, REPO } from '../server/serve-helpers.js';
import { cliWithStdout, startTestServer, type Captured } from './cli-helpers.js';

let server: WharfServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** A stdout that takes `accepted` writes, then fails every write with `errno`, as a closed pipe does. */
function failingStdout(accepted: number, errno = 'EPIPE'): { stream: Writable; written: () => string } {
  let out = '';
  let n = 0;
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (n++ < accepted) {
        out += chunk.toString();
        cb();
      } else cb(Object.assign(new Error(`write ${errno}`), { code: errno }));
    },
  });
  return { stream, written: () => out };
}

const run = (stdout: Writable, args: string[]): Promise<Omit<Captured, 'stdout'>> =>
  cliWithStdout(server, args, stdout);

async function queueCounts(queue: string): Promise<{ depth: number; inFlight: number }> {
  const s = await server.broker.stats(queue);
  if (s.kind !== 'queue') throw new Error(`${queue} is not a queue`);
  return { depth: s.depth, inFlight: s.inFlight };
}

describe('wharf consume, stdout closed', () => {
  it('acks no queue message whose line was not written: all go back visible, and it exits 0 quietly', async () => {
    await server.broker.createQueue('unread');
    for (let i = 0; i < 5; i++) await server.broker.publish('unread', { payload: i });
    const out = failingStdout(0);
    const r = await run(out.stream, ['consume', 'unread', '--count', '5', '--wait-ms', '500']);
    expect(r).toEqual({ code: 0, stderr: '' });
    expect(await queueCounts('unread')).toEqual({ depth: 5, inFlight: 0 });
  });

  it('acks the lines written before the reader went away and hands back the rest of the batch', async () => {
    await server.broker.createQueue('half-read');
    for (let i = 0; i < 5; i++) await server.broker.publish('half-read', { payload: i });
    const out = failingStdout(2);
    const r = await run(out.stream, ['consume', 'half-read', '--count', '5', '--wait-ms', '500']);
    expect(r).toEqual({ code: 0, stderr: '' });
    expect(out.written().trim().split('\n')).toHaveLength(2);
    expect(await queueCounts('half-read')).toEqual({ depth: 3, inFlight: 0 });
    const [next] = await server.broker.receive('half-read');
    expect(next.payload).toBe(2);
    expect(next.deliveryCount).toBe(1); // handed back uncounted (RELEASE): it reached no reader
    await next.ack();
  });

  it('a consumer group commits only the messages whose lines were written', async () => {
    await server.broker.createTopic('half-read-topic', { partitions: 1 });
    for (let i = 0; i < 5; i++) await server.broker.publish('half-read-topic', { payload: i });
    const out = failingStdout(2);
    const r = await run(out.stream, ['consume', 'half-read-topic', '--group', 'g', '--count', '5']);
    expect(r).toEqual({ code: 0, stderr: '' });
    expect(out.written().trim().split('\n')).toHaveLength(2);
    const s = await server.broker.stats('half-read-topic');
    expect(s.kind === 'topic' && s.groups.g.lag).toBe(3);
  });

  it('any other write failure is reported with exit 1, and the message is not acked', async () => {
    await server.broker.createQueue('disk-full');
    await server.broker.publish('disk-full', { payload: 'x' });
    const r = await run(failingStdout(0, 'ENOSPC').stream, [
      'consume',
      'disk-full',
      '--count',
      '1',
      '--wait-ms',
      '500',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error INTERNAL: cannot write to stdout: write ENOSPC\n$/);
    expect(await queueCounts('disk-full')).toEqual({ depth: 1, inFlight: 0 });
  });
});

/** The real command with its stdout's reader gone before it writes anything. */
function wharfWithoutReader(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH, WHARF_URL: server.nativeUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.destroy();
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('exit', (code) => resolve({ code, stderr }));
  });
}

describe('wharf with its reader gone (a real process)', () => {
  it('help ends quietly with exit 0', async () => {
    expect(await wharfWithoutReader(['serve', '--help'])).toEqual({ code: 0, stderr: '' });
  });

  it('consume ends quietly with exit 0 and leaves the message in its queue', async () => {
    await server.broker.createQueue('piped');
    await server.broker.publish('piped', { payload: 'kept' });
    expect(await wharfWithoutReader(['consume', 'piped', '--count', '1', '--wait-ms', '2000'])).toEqual({
      code: 0,
      stderr: '',
    });
    expect(await queueCounts('piped')).toEqual({ depth: 1, inFlight: 0 });
  });
});
