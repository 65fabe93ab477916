// The child processes of bench/remote.ts: the server, the producer, the consumer, both in one
// client process, and the embedded baseline. Each prints READY or its report as one JSON line.
import { Broker, type Payload, type Wharf } from '../../src/broker/index.js';
import { connect } from '../../src/client/index.js';
import { startNativeServer } from '../../src/server/native/index.js';
import { nowMs } from './child-roles.js';
import { LatencyRecorder } from './latency-recorder.js';
import { STALL_REPORT_MS, isPaced, num, opts, passesOf, values } from './remote-options.js';

export async function serverRole(): Promise<void> {
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

export interface ConsumerReport {
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

export interface ProducerReport {
  published: number;
  failed: number;
  startMs: number;
  publish_s: number;
  cpu_s: number;
}

/** Subscribes or consumes; returns a promise for the report once `expected` messages arrived. */
export async function startConsumer(
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
export async function runProducer(client: Wharf, scenario: string, stampProducerId?: string): Promise<ProducerReport> {
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

export async function consumerRole(): Promise<void> {
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

export async function producerRole(): Promise<void> {
  const client = await connect(`wharf://127.0.0.1:${String(values.port)}`, { idempotent: opts.idempotent });
  const report = await runProducer(client, String(values.scenario));
  process.stdout.write(`${JSON.stringify(report)}\n`);
  await client.close();
  process.exit(0);
}

/** latency-1k-one-client: the consumer and the producer in this one process, each on its own connection. */
export async function clientsRole(): Promise<void> {
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
export async function embeddedRole(): Promise<void> {
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

export async function createTarget(client: Wharf, scenario: string): Promise<void> {
  if (scenario.startsWith('topic-')) await client.createTopic('bench-topic', { partitions: 1 });
  else await client.createQueue('bench-queue', { visibilityTimeoutMs: 60_000 });
}
