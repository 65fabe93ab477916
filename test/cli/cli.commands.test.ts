// The wharf client commands against a running server: names, publish/consume, stats, dlq redrive, bench, help.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueStats } from '../../src/broker/index.js';
import type { CliContext } from '../../src/cli/context.js';
import { connect } from '../../src/client/index.js';
import type { WharfServer } from '../../src/server/index.js';
import { cli, cliWithStdout, startTestServer } from './cli-helpers.js';

let server: WharfServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const lines = (s: string): unknown[] =>
  s
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);

describe('wharf topics / queues / exchanges', () => {
  it('creates, lists, describes and deletes topics', async () => {
    expect(
      (await cli(server, ['topics', 'create', 'audit', '--partitions', '2', '--retention-ms', '60000'])).code,
    ).toBe(0);
    const list = await cli(server, ['topics', 'list']);
    expect(list.stdout).toMatch(/^NAME\s+PARTITIONS/);
    expect(list.stdout).toMatch(/audit\s+2\s+60000/);
    const described = await cli(server, ['topics', 'describe', 'audit']);
    expect(JSON.parse(described.stdout)).toMatchObject({ name: 'audit', partitions: 2, retentionMs: 60000 });
    expect((await cli(server, ['topics', 'delete', 'audit'])).code).toBe(0);
    expect(JSON.parse((await cli(server, ['topics', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('creates queues with options and exchanges; a duplicate fails with ALREADY_EXISTS and exit 1, a bad value exits 2', async () => {
    expect((await cli(server, ['queues', 'create', 'mail.dlq'])).code).toBe(0);
    const q = await cli(server, [
      'queues',
      'create',
      'mail',
      '--dead-letter-queue',
      'mail.dlq',
      '--max-deliveries',
      '2',
      '--visibility-timeout-ms',
      '5000',
    ]);
    expect(JSON.parse(q.stdout).options).toMatchObject({
      deadLetterQueue: 'mail.dlq',
      maxDeliveries: 2,
      visibilityTimeoutMs: 5000,
    });
    const dup = await cli(server, ['queues', 'create', 'mail']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^error ALREADY_EXISTS: .*\n {2}fix: /);
    const bad = await cli(server, ['queues', 'create', 'x', '--max-deliveries', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: option '--max-deliveries <n>' argument 'many' is invalid\./);

    const x = await cli(server, ['exchanges', 'create', 'events', '--type', 'topic']);
    expect(x.code).toBe(0);
    expect(JSON.parse(x.stdout)).toMatchObject({ name: 'events', type: 'topic' });
    expect((await cli(server, ['exchanges', 'list'])).stdout).toMatch(/events\s+topic\s+0/);
    expect(JSON.parse((await cli(server, ['exchanges', 'describe', 'events'])).stdout)).toMatchObject({
      kind: 'exchange',
    });
    const bound = await cli(server, ['exchanges', 'bind', 'events', '--queue', 'mail', '--pattern', 'mail.*']);
    expect(JSON.parse(bound.stdout)).toMatchObject({
      exchange: 'events',
      target: { queue: 'mail' },
      pattern: 'mail.*',
    });
    expect((await cli(server, ['publish', 'events', '{"to": "b"}', '--type', 'mail.sent'])).stdout).toMatch(
      /"routed":1/,
    );
    expect((await cli(server, ['exchanges', 'bind', 'events', '--pattern', '#'])).stderr).toMatch(/exactly one target/);
    expect((await cli(server, ['exchanges', 'delete', 'events'])).code).toBe(0);
  });
});

describe('wharf publish / consume / tail', () => {
  it('publishes from @file with a header, consumes a queue with --count and acks it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-cli-'));
    try {
      await cli(server, ['queues', 'create', 'jobs']);
      const file = join(dir, 'job.json');
      await writeFile(file, '{"job": 1}');
      const one = await cli(server, ['publish', 'jobs', `@${file}`, '--header', 'tenant=acme', '--priority', '0']);
      expect(one.code).toBe(0);
      const consumed = await cli(server, ['consume', 'jobs', '--count', '1']);
      expect(lines(consumed.stdout)).toEqual([
        expect.objectContaining({ queue: 'jobs', payload: { job: 1 }, headers: { tenant: 'acme' } }),
      ]);
      const stats = JSON.parse((await cli(server, ['stats', 'jobs'])).stdout);
      expect(stats).toMatchObject({ kind: 'queue', depth: 0, inFlight: 0 });
      const notJson = await cli(server, ['publish', 'jobs', 'not json']);
      expect(notJson.code).toBe(1);
      expect(notJson.stderr).toMatch(/INVALID_ARGUMENT.*--raw/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('consumes a topic with a group from earliest, and the group resumes after what it printed', async () => {
    await cli(server, ['topics', 'create', 'clicks', '--partitions', '1']);
    for (const n of [1, 2, 3]) await cli(server, ['publish', 'clicks', String(n)]);
    const first = await cli(server, ['consume', 'clicks', '--group', 'g', '--count', '2']);
    expect(lines(first.stdout).map((m) => (m as { payload: number }).payload)).toEqual([1, 2]);
    const rest = await cli(server, ['consume', 'clicks', '--group', 'g', '--count', '1']);
    expect(lines(rest.stdout).map((m) => (m as { payload: number }).payload)).toEqual([3]);
    const table = await cli(server, ['stats']);
    expect(table.stdout).toMatch(/clicks\s+topic\s+3/);
  });

  it('tail prints only messages published after it started', async () => {
    await cli(server, ['topics', 'create', 'logs', '--partitions', '1']);
    await cli(server, ['publish', 'logs', '"old"']);
    const tail = cli(server, ['tail', 'logs', '--count', '1']);
    await new Promise((r) => setTimeout(r, 300));
    await server.broker.publish('logs', { payload: 'new' });
    const out = await tail;
    expect(lines(out.stdout).map((m) => (m as { payload: string }).payload)).toEqual(['new']);
  });
});

describe('wharf tail, topic deleted', () => {
  it('exits 1 with NOT_FOUND when the topic it tails is deleted', async () => {
    await cli(server, ['topics', 'create', 'short-lived', '--partitions', '1']);
    const tail = cli(server, ['tail', 'short-lived']);
    await new Promise((r) => setTimeout(r, 300));
    await server.broker.deleteTopic('short-lived');
    const out = await tail;
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('NOT_FOUND');
    expect(out.stderr).toContain('"short-lived" was deleted'); // ended while tailing, not refused at subscribe
  });
});

describe('wharf consume, interrupted', () => {
  it('Ctrl-C ends a queue consumer waiting in a 20 s long poll without waiting it out, exit 0', async () => {
    await cli(server, ['queues', 'create', 'quiet']);
    const t0 = Date.now();
    const running = cli(server, ['consume', 'quiet', '--wait-ms', '20000']);
    await new Promise((r) => setTimeout(r, 300));
    process.emit('SIGINT', 'SIGINT');
    const out = await running;
    expect(out.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3_000); // the client does not wait for the long poll at close
  });
});

describe('wharf consume, interrupted while an answer is on its way', () => {
  it('Ctrl-C hands back what that receive leased, uncounted, instead of leaving it leased until it times out', async () => {
    await cli(server, ['queues', 'create', 'in-transit']);
    await server.broker.publish('in-transit', { payload: 'late' });
    let answered!: () => void;
    const serverAnswered = new Promise<void>((resolve) => (answered = resolve));
    // A client that sees each receive's answer 200 ms after the server gave it: on its way, as over a slow link.
    const slowAnswers: CliContext['connect'] = async (url) => {
      const c = await connect(url);
      const receive = c.receive.bind(c);
      c.receive = async (queue, options) => {
        const got = await receive(queue, options);
        answered();
        await new Promise((r) => setTimeout(r, 200));
        return got;
      };
      return c;
    };
    let printed = '';
    const stdout = new Writable({
      write(chunk: Buffer, _enc, cb) {
        printed += chunk.toString();
        cb();
      },
    });
    const running = cliWithStdout(server, ['consume', 'in-transit'], stdout, slowAnswers);
    await serverAnswered;
    process.emit('SIGINT', 'SIGINT');
    const out = await running;
    expect(out.code, out.stderr).toBe(0);
    expect(printed).toBe('');
    const s = (await server.broker.stats('in-transit')) as QueueStats;
    expect([s.depth, s.inFlight]).toEqual([1, 0]);
    const [m] = await server.broker.receive('in-transit');
    expect([m.payload, m.deliveryCount]).toEqual(['late', 1]);
  });
});

describe('wharf stats --watch', () => {
  it('redraws a live table until interrupted', async () => {
    await cli(server, ['queues', 'create', 'watched']);
    await server.broker.publish('watched', [{ payload: 1 }, { payload: 2 }]);
    const running = cli(server, ['stats', 'watched', '--watch', '--interval', '50']);
    await new Promise((r) => setTimeout(r, 400));
    process.emit('SIGINT', 'SIGINT'); // only the command's own listener is registered in this worker
    const out = await running;
    expect(out.code).toBe(0);
    const frames = out.stdout.split('\x1b[2J\x1b[H').filter(Boolean);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(frames[frames.length - 1]).toMatch(/watched\s+queue\s+2\s+0/);
  });
});

describe('wharf dlq / bench / help', () => {
  it('dlq redrive moves dead letters back to their queue', async () => {
    await cli(server, ['queues', 'create', 'pay.dlq']);
    await cli(server, ['queues', 'create', 'pay', '--dead-letter-queue', 'pay.dlq', '--max-deliveries', '1']);
    await server.broker.publish('pay', { payload: 'p' });
    const [m] = await server.broker.receive('pay');
    await m.nack({ requeue: false });
    const out = await cli(server, ['dlq', 'redrive', 'pay.dlq']);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ redriven: 1 });
    const s = await server.broker.stats('pay');
    expect(s.kind === 'queue' && s.depth).toBe(1);
  });

  it('bench publishes and consumes N messages and prints throughput as JSON', async () => {
    const out = await cli(server, ['bench', '--messages', '200', '--batch', '50', '--size', '64']);
    expect(out.code).toBe(0);
    const result = JSON.parse(out.stdout);
    expect(result).toMatchObject({ kind: 'topic', messages: 200, sizeBytes: 64 });
    expect(result.publishPerSecond).toBeGreaterThan(0);
    expect(result.consumePerSecond).toBeGreaterThan(0);
    expect(out.stderr).toContain('200/200');
    expect((await server.broker.listTopics()).some((t) => t.name.startsWith('bench-'))).toBe(false);
  });

  it('bench refuses a --kind it cannot measure as a usage error, before connecting', async () => {
    const out = await cli(server, ['bench', '--kind', 'foo', '--messages', '10']);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(
      /^error: option '--kind <kind>' argument 'foo' is invalid\. Allowed choices are topic, queue\./,
    );
    expect((await server.broker.listTopics()).some((t) => t.name.startsWith('bench-'))).toBe(false);
  });

  it('--url works before the command as after it, over WHARF_URL; after the command it wins; serve refuses it', async () => {
    const unreachable = 'wharf://127.0.0.1:1';
    const before = await cli(server, ['--url', unreachable, 'queues', 'list']);
    expect(before.code).toBe(1);
    expect(before.stderr).toContain(`cannot reach ${unreachable}`);
    const both = await cli(server, ['--url', unreachable, 'queues', 'list', '--url', server.nativeUrl]);
    expect(both.code).toBe(0);
    expect(both.stdout).toMatch(/^NAME/);
    const serve = await cli(server, ['--url', server.nativeUrl, 'serve']);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain('--url is for client commands');
  });

  it('--help works on every command', async () => {
    for (const args of [
      ['--help'],
      ['serve', '--help'],
      ['topics', 'create', '--help'],
      ['publish', '--help'],
      ['consume', '--help'],
      ['stats', '--help'],
      ['dlq', 'redrive', '--help'],
      ['bench', '--help'],
    ]) {
      const out = await cli(server, args);
      expect(out.code).toBe(0);
      expect(out.stdout).toMatch(/^Usage: wharf/);
    }
    const serveHelp = (await cli(server, ['serve', '--help'])).stdout;
    expect(serveHelp).toContain('WHARF_HTTP_PORT');
    expect(serveHelp).toMatch(/Precedence: flags > environment/);
  });
});
