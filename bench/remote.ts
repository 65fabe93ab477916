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
import { parseArgs } from 'node:util';
import { Broker, type Payload, type Wharf } from '../src/broker/index.js';
import { connect } from '../src/client/index.js';
import { startNativeServer } from '../src/server/native/index.js';
import { cpuSecondsOf, nextLine, nowMs, spawnRole, type RoleProcess } from './lib/child-roles.js';
import { LatencyRecorder } from './lib/latency-recorder.js';

const SELF = fileURLToPath(import.meta.url);
const { values } = parseArgs({
  strict: false,
  options: {
    role: { type: 'string' },
    port: { type: 'string' },
    dir: { type: 'string' },
    scenario: { type: 'string' },
    count: { type: 'string' },
    size: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    window: { type: 'string' },
    prefetch: { type: 'string' },
    scenarios: { type: 'string' },
    modes: { type: 'string' },
    fsync: { type: 'string' },
    idempotent: { type: 'string' },
    payload: { type: 'string' },
    warmup: { type: 'string' },
    'warmup-count': { type: 'string' },
    'warm-passes': { type: 'string' },
  },
});
/** A producer or consumer without progress for this long reports it on stderr. */
const STALL_REPORT_MS = 10_000;
/** The paced latency scenarios (not counted until --warmup s have passed). */
const isPaced = (scenario: string): boolean => scenario.startsWith('latency-1k');
const num = (v: unknown, d: number): number => (typeof v === 'string' && v !== '' ? Number(v) : d);
const opts = {
  count: num(values.count ?? process.env.COUNT, 100_000),
  size: num(values.size ?? process.env.SIZE, 1024),
  rate: num(values.rate ?? process.env.RATE, 1000),
  duration: num(values.duration ?? process.env.DURATION, 10),
  window: num(values.window ?? process.env.WINDOW, 1000),
  prefetch: num(values.prefetch ?? process.env.PREFETCH, 1000),
  /** 'never' takes the disk out of the comparison, leaving the CPU cost of each path. */
  fsync: (values.fsync ?? process.env.FSYNC ?? 'always') as 'always' | 'never',
  /** 'false': the remote producer does not stamp producerId + sequence (what idempotence costs). */
  idempotent: (values.idempotent ?? 'true') !== 'false',
  /** 'json': each payload is a JSON object of about --size bytes of text instead of raw bytes. */
  payload: (values.payload ?? process.env.PAYLOAD ?? 'bytes') as 'bytes' | 'json',
  /**
   * latency-1k: seconds paced before the measured --duration, not counted in p50/p99. The three
   * processes start cold (code not yet optimised by the JIT); the peers' servers are long-running
   * and their clients run the throughput scenarios first. p99_all_ms counts every message.
   */
  warmup: num(values.warmup ?? process.env.WARMUP, 2),
  /** Throughput scenarios: passes measured after the first (cold) one on the same broker; the row is their median. 0: the cold pass alone. */
  warmPasses: num(values['warm-passes'] ?? process.env.WARM_PASSES, 3),
};
if (opts.payload !== 'bytes' && opts.payload !== 'json')
  throw new Error(`--payload ${String(opts.payload)}: use bytes or json`);

// ------------------------------------------------------------------ roles (child processes)

async function serverRole(): Promise<void> {
  const broker = await Broker.open({ dataDir: String(values.dir), fsync: opts.fsync });
  const server = await startNativeServer(broker, { port: 0 });
  process.stdout.write(`READY ${server.address().port}\n`);
  process.on(
    'SIGTERM',
    () =>
      void server
        .close()
        .then(() => broker.close())
        .then(() => process.exit(0)),
  );
}

interface ConsumerReport {
  received: number;
  firstMs: number;
  lastMs: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  p99_all_ms: number;
  cpu_s: number;
  wall_s: number;
}

interface ProducerReport {
  published: number;
  failed: number;
  startMs: number;
  publish_s: number;
  cpu_s: number;
}

/** Subscribes or consumes; returns a promise for the report once `expected` messages arrived. */
async function startConsumer(
  client: Wharf,
  scenario: string,
  expected: number,
  warmupCount = 0,
): Promise<{ finished: Promise<ConsumerReport> }> {
  /** Messages from warmupCount on; latenciesAll: every message. */
  const latencies = new LatencyRecorder(expected - warmupCount);
  const latenciesAll = new LatencyRecorder(expected);
  let received = 0;
  let firstMs = 0;
  let lastMs = 0;
  let cpu0 = process.cpuUsage();
  let t0 = nowMs();
  let done!: () => void;
  const arrived = new Promise<void>((r) => (done = r));
  const onPayload = (payload: unknown): void => {
    const now = nowMs();
    let sent: number;
    let seq: number;
    if (payload instanceof Uint8Array) {
      // The remote client hands payloads over as Buffers; a plain Uint8Array is wrapped (as the peers' harness does).
      const b = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
      sent = b.readDoubleLE(0);
      seq = b.readUInt32LE(8);
    } else {
      ({ sentMs: sent, seq } = payload as { sentMs: number; seq: number });
    }
    const latencyMs = now - sent;
    latenciesAll.add(latencyMs);
    if (seq >= warmupCount) latencies.add(latencyMs);
    if (received++ === 0) firstMs = now;
    lastMs = now;
    if (received === expected) done();
  };
  const closer = scenario.startsWith('topic-')
    ? await client.subscribe(
        'bench-topic',
        {
          group: 'bench',
          from: 'earliest',
          ackMode: scenario === 'topic-auto' ? 'auto' : 'manual',
          maxInFlight: opts.prefetch,
        },
        (m) => onPayload(m.payload),
      )
    : await client.consume('bench-queue', { concurrency: opts.prefetch, prefetch: opts.prefetch }, (m) =>
        onPayload(m.payload),
      );
  cpu0 = process.cpuUsage();
  t0 = nowMs();
  let receivedSeen = 0;
  const stallReport = setInterval(() => {
    if (received === receivedSeen)
      process.stderr.write(`bench consumer: nothing for ${STALL_REPORT_MS} ms, ${received} of ${expected} received\n`);
    receivedSeen = received;
  }, STALL_REPORT_MS);
  stallReport.unref();
  const finished = arrived.then(async () => {
    clearInterval(stallReport);
    const cpu = process.cpuUsage(cpu0);
    await closer.close();
    const p = (q: number): number => latencies.quantileMs(q) ?? 0;
    const p99All = latenciesAll.quantileMs(0.99) ?? 0;
    return {
      received,
      firstMs,
      lastMs,
      p50_ms: p(0.5),
      p99_ms: p(0.99),
      p999_ms: p(0.999),
      max_ms: p(1),
      p99_all_ms: p99All,
      cpu_s: (cpu.user + cpu.system) / 1e6,
      wall_s: (nowMs() - t0) / 1000,
    };
  });
  return { finished };
}

/**
 * Publishes one message per call, at most `window` unconfirmed (or paced at --rate for latency-1k).
 * `stampProducerId`: stamp producerId + sequence on each message, as the remote client does on its
 * own (idempotent by default), so the embedded baseline pays the broker the same idempotence work.
 */
async function runProducer(client: Wharf, scenario: string, stampProducerId?: string): Promise<ProducerReport> {
  const target = scenario.startsWith('topic-') ? 'bench-topic' : 'bench-queue';
  const total = isPaced(scenario) ? Math.round(opts.rate * (opts.duration + opts.warmup)) : opts.count;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  const low = Math.floor(opts.window / 2);
  const cpu0 = process.cpuUsage();
  const startMs = nowMs();
  let lastConfirmMs = startMs;
  let failed = 0;
  const settled = (): void => {
    if (--inFlight <= low && wake !== null) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const confirmed = (): void => {
    lastConfirmMs = nowMs();
    settled();
  };
  // A failed publish frees its window slot too (a producer waiting for room would otherwise wait
  // for ever once every publish in flight failed); the first error is shown, the rest counted.
  const rejected = (err: unknown): void => {
    if (failed++ === 0) process.stderr.write(`bench producer: publish failed: ${String(err)}\n`);
    settled();
  };
  // A JSON payload of about --size bytes of text: the stamp, the sequence and padding.
  const pad = 'a'.repeat(Math.max(0, opts.size - 60));
  const send = (seq: number): void => {
    let b: Payload;
    if (opts.payload === 'json') {
      b = { sentMs: nowMs(), seq, pad };
    } else {
      const bytes = Buffer.allocUnsafe(opts.size);
      bytes.fill(0x61, 12);
      bytes.writeUInt32LE(seq >>> 0, 8);
      bytes.writeDoubleLE(nowMs(), 0);
      b = bytes;
    }
    inFlight++;
    client
      .publish(
        target,
        stampProducerId === undefined ? { payload: b } : { payload: b, producerId: stampProducerId, sequence: seq },
      )
      .then(confirmed, rejected);
  };
  // A bench that stops making progress says where it stands instead of hanging silently.
  let confirmsSeen = 0;
  const stallReport = setInterval(() => {
    if (lastConfirmMs === confirmsSeen && inFlight > 0)
      process.stderr.write(`bench producer: no confirm for ${STALL_REPORT_MS} ms, ${inFlight} publishes in flight\n`);
    confirmsSeen = lastConfirmMs;
  }, STALL_REPORT_MS);
  stallReport.unref();
  if (isPaced(scenario)) {
    let seq = 0;
    while (seq < total) {
      const due = Math.min(total, Math.floor(((nowMs() - startMs) * opts.rate) / 1000) + 1);
      while (seq < due) send(seq++);
      await new Promise((r) => setTimeout(r, 1));
    }
  } else {
    for (let seq = 0; seq < total; seq++) {
      if (inFlight >= opts.window) await new Promise<void>((r) => (wake = r));
      send(seq);
    }
  }
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 1));
  clearInterval(stallReport);
  const cpu = process.cpuUsage(cpu0);
  return {
    published: total - failed,
    failed,
    startMs,
    publish_s: (lastConfirmMs - startMs) / 1000,
    cpu_s: (cpu.user + cpu.system) / 1e6,
  };
}

async function consumerRole(): Promise<void> {
  const client = await connect(`wharf://127.0.0.1:${String(values.port)}`);
  const { finished } = await startConsumer(
    client,
    String(values.scenario),
    num(values.count, 0),
    num(values['warmup-count'], 0),
  );
  process.stdout.write('READY\n');
  const report = await finished;
  await client.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}

async function producerRole(): Promise<void> {
  const client = await connect(`wharf://127.0.0.1:${String(values.port)}`, { idempotent: opts.idempotent });
  const report = await runProducer(client, String(values.scenario));
  process.stdout.write(`${JSON.stringify(report)}\n`);
  await client.close();
  process.exit(0);
}

/** latency-1k-one-client: the consumer and the producer in this one process, each on its own connection. */
async function clientsRole(): Promise<void> {
  const url = `wharf://127.0.0.1:${String(values.port)}`;
  const consumerClient = await connect(url);
  const { finished } = await startConsumer(
    consumerClient,
    String(values.scenario),
    num(values.count, 0),
    num(values['warmup-count'], 0),
  );
  const producerClient = await connect(url, { idempotent: opts.idempotent });
  const producer = await runProducer(producerClient, String(values.scenario));
  const consumer = await finished;
  await Promise.all([producerClient.close(), consumerClient.close()]);
  process.stdout.write(`${JSON.stringify(producer)}\n${JSON.stringify(consumer)}\n`);
  process.exit(0);
}

/** The same producer and consumer against an in-process Broker: the baseline the remote path is measured against. */
async function embeddedRole(): Promise<void> {
  const scenario = String(values.scenario);
  const broker = await Broker.open({ dataDir: String(values.dir), fsync: opts.fsync });
  await createTarget(broker, scenario);
  process.stdout.write('READY\n');
  for (let pass = 0; pass < passesOf(scenario); pass++) {
    const { finished } = await startConsumer(broker, scenario, num(values.count, 0), num(values['warmup-count'], 0));
    const producer = await runProducer(
      broker,
      scenario,
      opts.idempotent ? `bench-embedded-producer-${pass}` : undefined,
    );
    const consumer = await finished;
    process.stdout.write(`${JSON.stringify(producer)}\n${JSON.stringify(consumer)}\n`);
  }
  await broker.close();
  process.exit(0);
}

async function createTarget(client: Wharf, scenario: string): Promise<void> {
  if (scenario.startsWith('topic-')) await client.createTopic('bench-topic', { partitions: 1 });
  else await client.createQueue('bench-queue', { visibilityTimeoutMs: 60_000 });
}

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

/** Passes a scenario runs: the cold one, then --warm-passes more for throughput scenarios; one for latency-1k. */
function passesOf(scenario: string): number {
  return isPaced(scenario) ? 1 : 1 + Math.max(0, Math.floor(opts.warmPasses));
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
