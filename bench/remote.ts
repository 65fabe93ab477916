// Native protocol end to end over loopback TCP: a server process (durable broker, fsync 'always'),
// one producer process and one consumer process. Scenarios and output fields follow the peer
// harness (../shared/bench/peers: README.md, lib.mjs) so rows sit side by side:
//   queue-durable  durable queue, 1 KiB, publisher confirms (window 1000), consume + ack per message
//   topic-durable  1-partition topic, same producer, one consumer-group member (commit per message)
//   topic-auto     the same with ackMode 'auto' (at-most-once: committed on delivery, deliveries stream)
//   latency-1k     queue-durable paced at --rate msgs/s for --duration s, after --warmup s not counted
//   latency-1k-one-client  the same with producer and consumer in one client process, each on its own
//                  connection: the shape of the peers' harness (two processes in all, with the server)
//   queue-split    (not run by default) the server's CPU per message publishing alone, then delivering alone
// Throughput scenarios run a cold pass, then --warm-passes (3) more on the same broker, and report
// the warm pass with the median msgs/s, the cold pass beside it as cold_*: --warm-passes 0 measures
// the cold pass alone.
// Each scenario also runs embedded (the same producer and consumer code against an in-process
// Broker, one process) right before the remote run, and the remote row carries the ratio, so the
// remote overhead is read from two runs side by side on the same busy machine (--modes remote
// skips the embedded run).
// Usage: npx tsx bench/remote.ts [--count 100000] [--size 1024] [--rate 1000] [--duration 10] [--scenarios a,b]
//        [--modes embedded,remote] [--fsync always|never] [--idempotent false] [--payload bytes|json] [--warm-passes 3]    BENCH_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles every child
// Latency = consumer receive time minus the send stamp in the payload (same host clock).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf, nextLine, nowMs, spawnRole, type RoleProcess } from './lib/child-roles.js';
import { connect } from '../src/client/index.js';
import { isPaced, opts, passesOf, values } from './lib/remote-options.js';
import {
  clientsRole,
  consumerRole,
  createTarget,
  embeddedRole,
  producerRole,
  serverRole,
  type ConsumerReport,
  type ProducerReport,
} from './lib/remote-roles.js';

const SELF = fileURLToPath(import.meta.url);

// ------------------------------------------------------------------ orchestrator

type Row = Record<string, unknown> & { msgs_per_s: number | null; p99_ms: number | null };

function rowOf(
  system: string,
  scenario: string,
  p: ProducerReport,
  c: ConsumerReport,
  notes: string,
  cpu: {
    server_cpu_pct?: number | null;
    client_cpu_pct: number;
    server_cpu_us_per_msg?: number | null;
    client_cpu_us_per_msg?: number | null;
  },
  cpuSeconds: number | null,
): Row {
  const seconds = (c.lastMs - p.startMs) / 1000;
  return {
    system,
    scenario,
    msgs: c.received,
    bytes: c.received * opts.size,
    seconds: Math.round(seconds * 1000) / 1000,
    msgs_per_s: seconds > 0 ? Math.round(c.received / seconds) : null,
    p50_ms: c.p50_ms,
    p99_ms: c.p99_ms,
    notes: `${notes}, ${settingsNote()}${isPaced(scenario) ? `, paced ${opts.rate}/s: p50/p99 over ${opts.duration} s after a ${opts.warmup} s warm-up (p99_all_ms: every message)` : ''}${p.failed > 0 ? `, ${p.failed} publishes failed` : ''}`,
    p999_ms: c.p999_ms,
    max_ms: c.max_ms,
    ...(isPaced(scenario) ? { p99_all_ms: c.p99_all_ms } : {}),
    ...cpu,
    published: p.published,
    publish_s: Math.round(p.publish_s * 1000) / 1000,
    // CPU of every process involved (server, producer, consumer) per message: on a shared machine
    // this is steadier than msgs/s, which follows whatever CPU share the processes get.
    cpu_us_per_msg:
      cpuSeconds === null || c.received === 0 ? null : Math.round((cpuSeconds / c.received) * 1e6 * 10) / 10,
  };
}

/** The run's settings, for a row's notes. */
function settingsNote(): string {
  return `fsync ${opts.fsync}, window ${opts.window}, prefetch ${opts.prefetch}${opts.idempotent ? '' : ', producer not idempotent'}${opts.payload === 'json' ? ', JSON payloads' : ''}`;
}

function commonArgs(scenario: string): string[] {
  const total = isPaced(scenario) ? Math.round(opts.rate * (opts.duration + opts.warmup)) : opts.count;
  const warmupCount = isPaced(scenario) ? Math.round(opts.rate * opts.warmup) : 0;
  return [
    '--warmup-count',
    String(warmupCount),
    '--fsync',
    opts.fsync,
    '--idempotent',
    String(opts.idempotent),
    '--scenario',
    scenario,
    '--count',
    String(total),
    '--size',
    String(opts.size),
    '--rate',
    String(opts.rate),
    '--duration',
    String(opts.duration),
    '--window',
    String(opts.window),
    '--prefetch',
    String(opts.prefetch),
    '--payload',
    opts.payload,
  ];
}

async function runEmbedded(scenario: string): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-embedded-'));
  const proc = spawnRole(SELF, ['--role', 'embedded', '--dir', dir, ...commonArgs(scenario)]);
  try {
    await nextLine(proc.lines, 'READY');
    const rows: Row[] = [];
    for (let pass = 0; pass < passesOf(scenario); pass++) {
      const cpu0 = cpuSecondsOf(proc.proc.pid!);
      const t0 = nowMs();
      const p = JSON.parse(await nextLine(proc.lines, '{')) as ProducerReport;
      const c = JSON.parse(await nextLine(proc.lines, '{')) as ConsumerReport;
      const cpu1 = cpuSecondsOf(proc.proc.pid!);
      const wall = (nowMs() - t0) / 1000;
      const used = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
      const pct = used === null ? 0 : Math.round((used / wall) * 1000) / 10;
      rows.push(
        rowOf(
          'wharf-embedded',
          scenario,
          p,
          c,
          'in-process Broker, producer and consumer in one process, producerId + sequence stamped like the remote client',
          { client_cpu_pct: pct },
          used,
        ),
      );
    }
    return withColdPass(rows);
  } finally {
    proc.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs fn against a server process on a fresh data directory, with the scenario's queue or topic
 * created; `common` are the arguments its producer and consumer processes take. Stops the server after.
 */
async function withServer<T>(scenario: string, fn: (server: RoleProcess, common: string[]) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-remote-'));
  const server = spawnRole(SELF, ['--role', 'server', '--dir', dir, '--fsync', opts.fsync]);
  try {
    const port = Number((await nextLine(server.lines, 'READY')).split(' ')[1]);
    const admin = await connect(`wharf://127.0.0.1:${port}`);
    await createTarget(admin, scenario);
    await admin.close();
    return await fn(server, ['--port', String(port), ...commonArgs(scenario)]);
  } finally {
    server.proc.kill('SIGTERM');
    setTimeout(() => server.proc.kill('SIGKILL'), 2_000).unref();
    await new Promise((r) => server.proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One pass of a scenario against a running server: fresh consumer and producer processes. */
async function remotePass(scenario: string, server: RoleProcess, common: string[]): Promise<Row> {
  if (scenario === 'latency-1k-one-client') return oneClientPass(scenario, server, common);
  const consumer = spawnRole(SELF, ['--role', 'consumer', ...common]);
  await nextLine(consumer.lines, 'READY');
  const serverCpu = serverCpuFrom(server);
  const producer = spawnRole(SELF, ['--role', 'producer', ...common]);
  const p = JSON.parse(await nextLine(producer.lines, '{')) as ProducerReport;
  const c = JSON.parse(await nextLine(consumer.lines, '{')) as ConsumerReport;
  const { wall, serverUsed } = serverCpu();
  await Promise.all([producer, consumer].map(exited));
  return remoteRow(
    scenario,
    p,
    c,
    'native protocol over loopback, 1 producer + 1 consumer process',
    wall,
    serverUsed,
    p.cpu_s + c.cpu_s,
  );
}

/** Starts measuring: the returned function gives the wall seconds since and the server's CPU seconds meanwhile. */
function serverCpuFrom(server: RoleProcess): () => { wall: number; serverUsed: number | null } {
  const serverCpu0 = cpuSecondsOf(server.proc.pid!);
  const t0 = nowMs();
  return () => {
    const wall = (nowMs() - t0) / 1000;
    const serverCpu1 = cpuSecondsOf(server.proc.pid!);
    return { wall, serverUsed: serverCpu0 === null || serverCpu1 === null ? null : serverCpu1 - serverCpu0 };
  };
}

function exited(child: RoleProcess): Promise<unknown> | undefined {
  return child.proc.exitCode === null ? new Promise((r) => child.proc.once('exit', r)) : undefined;
}

/** A remote pass's row: clientCpuS is the CPU of the client processes, each counted once. */
function remoteRow(
  scenario: string,
  p: ProducerReport,
  c: ConsumerReport,
  notes: string,
  wall: number,
  serverUsed: number | null,
  clientCpuS: number,
): Row {
  return rowOf(
    'wharf-remote',
    scenario,
    p,
    c,
    notes,
    {
      server_cpu_pct: serverUsed === null ? null : Math.round((serverUsed / wall) * 1000) / 10,
      client_cpu_pct: Math.round((clientCpuS / wall) * 1000) / 10,
      // Per message, for each side: the server's thread is the pipeline's usual limit.
      server_cpu_us_per_msg:
        serverUsed === null || c.received === 0 ? null : Math.round((serverUsed / c.received) * 1e7) / 10,
      client_cpu_us_per_msg: c.received === 0 ? null : Math.round((clientCpuS / c.received) * 1e7) / 10,
    },
    serverUsed === null ? null : serverUsed + clientCpuS,
  );
}

/** One pass with the producer and the consumer in one client process (the peers' harness's shape). */
async function oneClientPass(scenario: string, server: RoleProcess, common: string[]): Promise<Row> {
  const serverCpu = serverCpuFrom(server);
  const clients = spawnRole(SELF, ['--role', 'clients', ...common]);
  const p = JSON.parse(await nextLine(clients.lines, '{')) as ProducerReport;
  const c = JSON.parse(await nextLine(clients.lines, '{')) as ConsumerReport;
  const { wall, serverUsed } = serverCpu();
  await exited(clients);
  // The one process's CPU is counted once: its producer and consumer reports each measure it whole.
  const notes =
    "native protocol over loopback, producer and consumer in one client process on two connections (as the peers' harness)";
  return remoteRow(scenario, p, c, notes, wall, serverUsed, c.cpu_s);
}

/**
 * A throughput scenario runs several passes on one server: the first from a cold start, then
 * --warm-passes more (3) on the server the first warmed, each with fresh client processes, as the
 * peers' harness meets long-running servers with a fresh client process. The row is the warm pass
 * with the median msgs/s; the cold pass rides along as cold_*. latency-1k has its own warm-up
 * instead. (Embedded: the passes run in its one process.)
 */
function runRemote(scenario: string): Promise<Row> {
  return withServer(scenario, async (server, common) => {
    const rows: Row[] = [];
    for (let pass = 0; pass < passesOf(scenario); pass++) rows.push(await remotePass(scenario, server, common));
    return withColdPass(rows);
  });
}

/** The warm pass with the median msgs/s, with every warm pass's msgs/s and the cold pass's figures beside it. */
function withColdPass(rows: Row[]): Row {
  if (rows.length === 1) return rows[0];
  const cold = rows[0];
  const warm = rows.slice(1);
  const sorted = [...warm].sort((a, b) => (a.msgs_per_s ?? 0) - (b.msgs_per_s ?? 0));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return {
    ...median,
    notes: `${String(median.notes)}, median of ${warm.length} passes on a broker warmed by a first (cold_*: the first pass)`,
    warm_runs: warm.map((r) => r.msgs_per_s).join(' / '),
    cold_msgs_per_s: cold.msgs_per_s,
    cold_p99_ms: cold.p99_ms,
    cold_cpu_us_per_msg: cold.cpu_us_per_msg,
  };
}

/**
 * queue-split: the server's CPU per message for the publish path alone (the producer fills the
 * queue, no consumer), then for the delivery path alone (the consumer drains it, no producer):
 * which side of a queue costs what, free of the two competing for the server. Remote only.
 */
function runSplit(): Promise<void> {
  return withServer('queue-split', async (server, common) => {
    const phase = async (name: string, role: 'producer' | 'consumer'): Promise<void> => {
      const cpu0 = cpuSecondsOf(server.proc.pid!);
      const t0 = nowMs();
      const child = spawnRole(SELF, ['--role', role, ...common]);
      const report = JSON.parse(await nextLine(child.lines, '{')) as ProducerReport & ConsumerReport;
      const cpu1 = cpuSecondsOf(server.proc.pid!);
      const msgs = role === 'producer' ? report.published : report.received;
      const seconds = role === 'producer' ? report.publish_s : (report.lastMs - report.firstMs) / 1000;
      process.stdout.write(
        `${JSON.stringify({
          system: 'wharf-remote',
          scenario: name,
          msgs,
          msgs_per_s: seconds > 0 ? Math.round(msgs / seconds) : null,
          p50_ms: null,
          p99_ms: null,
          notes: `${role === 'producer' ? 'publish alone (no consumer)' : 'deliver + ack alone (queue filled, no producer)'}, ${settingsNote()}`,
          server_cpu_us_per_msg:
            cpu0 === null || cpu1 === null || msgs === 0 ? null : Math.round(((cpu1 - cpu0) / msgs) * 1e7) / 10,
          wall_s: Math.round(nowMs() - t0) / 1000,
        })}\n`,
      );
    };
    await phase('queue-split publish', 'producer');
    await phase('queue-split consume', 'consumer');
  });
}

async function runScenario(scenario: string, modes: string[]): Promise<void> {
  if (scenario === 'queue-split') return runSplit();
  let embedded: Row | null = null;
  // latency-1k-one-client embedded would be latency-1k embedded again (one process either way).
  if (modes.includes('embedded') && scenario !== 'latency-1k-one-client') {
    embedded = await runEmbedded(scenario);
    process.stdout.write(`${JSON.stringify(embedded)}\n`);
  }
  if (modes.includes('remote')) {
    const remote = await runRemote(scenario);
    if (embedded !== null) {
      // Throughput: remote as a share of embedded (1 = no overhead). Latency and CPU per message: remote over embedded.
      if (remote.msgs_per_s !== null && embedded.msgs_per_s !== null)
        remote.throughput_vs_embedded = Math.round((remote.msgs_per_s / embedded.msgs_per_s) * 100) / 100;
      if (remote.p99_ms !== null && embedded.p99_ms !== null && embedded.p99_ms > 0)
        remote.p99_vs_embedded = Math.round((remote.p99_ms / embedded.p99_ms) * 100) / 100;
      const rc = remote.cpu_us_per_msg as number | null;
      const ec = embedded.cpu_us_per_msg as number | null;
      if (rc !== null && ec !== null && ec > 0) remote.cpu_vs_embedded = Math.round((rc / ec) * 100) / 100;
    }
    process.stdout.write(`${JSON.stringify(remote)}\n`);
  }
}

async function main(): Promise<void> {
  const role = values.role;
  if (role === 'server') return serverRole();
  if (role === 'consumer') return consumerRole();
  if (role === 'producer') return producerRole();
  if (role === 'embedded') return embeddedRole();
  if (role === 'clients') return clientsRole();
  const wanted =
    typeof values.scenarios === 'string'
      ? values.scenarios.split(',')
      : ['queue-durable', 'topic-durable', 'topic-auto', 'latency-1k', 'latency-1k-one-client'];
  const modes = typeof values.modes === 'string' ? values.modes.split(',') : ['embedded', 'remote'];
  for (const s of wanted) {
    try {
      await runScenario(s, modes);
    } catch (err) {
      process.stdout.write(
        `${JSON.stringify({ system: 'wharf-remote', scenario: s, msgs: 0, bytes: 0, seconds: 0, msgs_per_s: null, p50_ms: null, p99_ms: null, notes: `ERROR: ${(err as Error).message}`, error: true })}\n`,
      );
    }
  }
}

await main();
