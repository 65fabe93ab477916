// A lean reference for a remote durable queue of Wharf's design on this machine: the same three
// processes as bench/remote.ts queue-durable (a server, one producer, one consumer, loopback TCP,
// 1 KiB messages, window 1000, prefetch 1000) and the same durability with the same two files (a
// message is fsynced to the log before its confirm; a 32-byte delivery record is fsynced to the
// journal before the message is handed out; a 32-byte settle record per ack is fsynced before the
// ack is answered), with nothing else: no validation, no message ids, no headers, no idempotence,
// no per-message objects or promises. What a full broker costs on top is read against it. It is a
// reference for this design, not a bound on every design; `--path single` sketches another one: one
// file for messages, delivery records and settle records, so one fsync per round covers them all.
// Usage: npx tsx bench/remote-floor.ts            (throughput for each --path, serial as the median of 3; then latency-1k for each)
//        npx tsx bench/remote-floor.ts [--count 100000] [--rate 0] [--path serial|parallel|none|single] [--window 1000] [--prefetch 1000] [--size 1024]
//        (one run; --rate 1000 --count 12000 --warmup-count 2000 is the latency-1k scenario: paced, p50/p99 of
//        publish-to-receive after the first 2,000 messages)
import fs from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSecondsOf, nextLine, nowMs, spawnRole } from './lib/child-roles.js';
import { LatencyRecorder } from './lib/latency-recorder.js';

const SELF = fileURLToPath(import.meta.url);
const { values } = parseArgs({
  strict: false,
  options: {
    role: { type: 'string' },
    port: { type: 'string' },
    dir: { type: 'string' },
    count: { type: 'string' },
    size: { type: 'string' },
    window: { type: 'string' },
    prefetch: { type: 'string' },
    rate: { type: 'string' },
    path: { type: 'string' },
    'warmup-count': { type: 'string' },
  },
});
const num = (v: unknown, d: number): number => (typeof v === 'string' && v !== '' ? Number(v) : d);
/** As bench/remote.ts's defaults, from the same flags or environment variables (COUNT=… npm run bench moves both). */
const COUNT = num(values.count ?? process.env.COUNT, 100_000);
const SIZE = num(values.size ?? process.env.SIZE, 1024);
const WINDOW = num(values.window ?? process.env.WINDOW, 1000);
const PREFETCH = num(values.prefetch ?? process.env.PREFETCH, 1000);
/** 0: as fast as the window allows; otherwise paced at this many msgs/s (the latency-1k scenario). */
const RATE = num(values.rate, 0);
/** Paced runs: the first messages, not counted in p50/p99 (cold processes; see bench/remote.ts --warmup). */
const WARMUP_COUNT = num(values['warmup-count'], 0);
/**
 * Where the delivery record's fsync sits: 'serial' (after the message's, as a Wharf queue does),
 * 'parallel' (alongside the message's, when a consumer has credit), 'none' (no delivery record),
 * 'single' (not Wharf's design: delivery and settle records go in the log file itself, a message
 * with a waiting consumer's credit in the same round as its delivery record).
 */
const PATH = String(values.path ?? 'serial') as 'serial' | 'parallel' | 'none' | 'single';
if (!['serial', 'parallel', 'none', 'single'].includes(PATH))
  throw new Error(`--path ${PATH}: use serial, parallel, none or single`);
const OP_RECORD_BYTES = 32;

// Frame: u32 body length, u8 op, u32 count, then (publish, deliver) count x (u32 length + bytes).
const OP_PUBLISH = 1;
const OP_CONFIRM = 2;
const OP_DELIVER = 3;
const OP_ACK = 4;
const OP_ACKED = 5;

/** Splits a byte stream into frames (op, count, body at offset 9 of the frame). */
function frameReader(onFrame: (op: number, count: number, frame: Buffer) => void): (chunk: Buffer) => void {
  // Chunks of an incomplete frame are kept as a list and joined once the frame is whole, so a
  // large frame arriving in many chunks is copied once, not once per chunk.
  const parts: Buffer[] = [];
  let partsBytes = 0;
  let wantBytes = 0;
  return (chunk) => {
    if (parts.length > 0) {
      parts.push(chunk);
      partsBytes += chunk.length;
      if (partsBytes < wantBytes) return;
      chunk = Buffer.concat(parts, partsBytes);
      parts.length = 0;
      partsBytes = 0;
    }
    let at = 0;
    while (chunk.length - at >= 4) {
      const len = chunk.readUInt32BE(at);
      if (chunk.length - at < 4 + len) break;
      onFrame(chunk[at + 4], chunk.readUInt32BE(at + 5), chunk.subarray(at, at + 4 + len));
      at += 4 + len;
    }
    if (at < chunk.length) {
      const rest = chunk.subarray(at);
      parts.push(rest);
      partsBytes = rest.length;
      wantBytes = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : 4;
    }
  };
}

function header(op: number, count: number, bodyBytes: number): Buffer {
  const h = Buffer.allocUnsafe(9);
  h.writeUInt32BE(5 + bodyBytes, 0);
  h[4] = op;
  h.writeUInt32BE(count, 5);
  return h;
}

/** One file, written and fdatasynced in serial rounds; everything submitted during a round goes in the next. */
class Appender {
  private position = 0;
  private queued: Buffer[] = [];
  private callbacks: (() => void)[] = [];
  private running = false;
  constructor(private readonly fd: number) {}
  submit(buffers: Buffer[], done: () => void): void {
    for (const b of buffers) this.queued.push(b);
    this.callbacks.push(done);
    if (!this.running) this.round();
  }
  private round(): void {
    if (this.queued.length === 0) {
      this.running = false;
      return;
    }
    this.running = true;
    const buffers = this.queued;
    const callbacks = this.callbacks;
    this.queued = [];
    this.callbacks = [];
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    const at = this.position;
    this.position += bytes;
    fs.writev(this.fd, buffers, at, (err) => {
      if (err) throw err;
      fs.fdatasync(this.fd, (err2) => {
        if (err2) throw err2;
        for (const cb of callbacks) cb();
        this.round();
      });
    });
  }
}

async function serverRole(): Promise<void> {
  const dir = String(values.dir);
  const log = new Appender(fs.openSync(join(dir, 'log'), 'w+'));
  // 'single': one file, one round, one fsync for messages and records alike.
  const journal = PATH === 'single' ? log : new Appender(fs.openSync(join(dir, 'journal'), 'w+'));
  const ready: Buffer[] = []; // stored messages (length-prefixed), not yet handed out
  /** How many messages at the head of `ready` already have a durable delivery record ('parallel'). */
  let recordedAhead = 0;
  /** Credits promised to messages whose delivery record is being written alongside their append. */
  let reserved = 0;
  let consumer: net.Socket | null = null;
  let credits = 0;
  const deliver = (): void => {
    if (consumer === null || credits === 0 || ready.length === 0) return;
    const n = Math.min(credits, ready.length);
    credits -= n;
    const batch = ready.splice(0, n);
    const unrecorded = PATH === 'none' ? 0 : n - Math.min(n, recordedAhead);
    recordedAhead -= n - unrecorded;
    let bytes = 0;
    for (const b of batch) bytes += b.length;
    const sock = consumer;
    const send = (): void => void sock.write(Buffer.concat([header(OP_DELIVER, n, bytes), ...batch]));
    if (unrecorded > 0) journal.submit([Buffer.alloc(unrecorded * OP_RECORD_BYTES, 1)], send);
    else send();
  };
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.on(
      'data',
      frameReader((op, count, frame) => {
        if (op === OP_PUBLISH) {
          const records: Buffer[] = [];
          for (let at = 9, i = 0; i < count; i++) {
            const len = frame.readUInt32BE(at);
            records.push(frame.subarray(at, at + 4 + len));
            at += 4 + len;
          }
          // 'parallel': messages a consumer has credit for get their delivery record in the same
          // moment as their append; they are handed out once both are durable. The confirm waits
          // for the append alone.
          const ahead =
            (PATH === 'parallel' || PATH === 'single') && ready.length === 0
              ? Math.max(0, Math.min(count, credits - reserved))
              : 0;
          reserved += ahead;
          // 'single': the delivery records ride in the messages' own round, one fsync for both.
          const deliveryRecords = ahead > 0 ? Buffer.alloc(ahead * OP_RECORD_BYTES, 1) : null;
          const together = PATH === 'single' && deliveryRecords !== null;
          let waits = deliveryRecords !== null && !together ? 2 : 1;
          const bothDone = (): void => {
            if (--waits > 0) return;
            reserved -= ahead;
            recordedAhead += ahead;
            for (const r of records) ready.push(r);
            deliver();
          };
          log.submit(together ? [...records, deliveryRecords] : records, () => {
            sock.write(header(OP_CONFIRM, count, 0));
            bothDone();
          });
          if (deliveryRecords !== null && !together) journal.submit([deliveryRecords], bothDone);
        } else if (op === OP_ACK) {
          consumer = sock;
          credits += count;
          // An ack is answered once its settle record is durable (as a Wharf ack resolves).
          if (frame.length > 9)
            journal.submit(
              [Buffer.alloc(count * OP_RECORD_BYTES, 2)],
              () => void sock.write(header(OP_ACKED, count, 0)),
            );
          deliver();
        }
      }),
    );
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${(server.address() as net.AddressInfo).port}\n`));
}

async function producerRole(): Promise<void> {
  const sock = net.connect(Number(values.port), '127.0.0.1');
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  const cpu0 = process.cpuUsage();
  const startMs = nowMs();
  let sent = 0;
  let confirmed = 0;
  let queued: Buffer[] = [];
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    let bytes = 0;
    for (const b of queued) bytes += b.length;
    sock.write(Buffer.concat([header(OP_PUBLISH, queued.length, bytes), ...queued]));
    queued = [];
  };
  const due = (): number => (RATE > 0 ? Math.min(COUNT, Math.floor(((nowMs() - startMs) * RATE) / 1000) + 1) : COUNT);
  const pump = (): void => {
    const until = due();
    while (sent < until && sent - confirmed < WINDOW) {
      const m = Buffer.allocUnsafe(4 + SIZE);
      m.writeUInt32BE(SIZE, 0);
      m.fill(0x61, 12);
      m.writeDoubleLE(nowMs(), 4);
      queued.push(m);
      sent++;
      if (!flushScheduled) {
        flushScheduled = true;
        queueMicrotask(flush);
      }
    }
  };
  const done = new Promise<void>((resolve) => {
    sock.on(
      'data',
      frameReader((op, count) => {
        if (op !== OP_CONFIRM) return;
        confirmed += count;
        if (confirmed >= COUNT) resolve();
        else if (sent - confirmed <= WINDOW / 2) pump();
      }),
    );
  });
  pump();
  if (RATE > 0) while (sent < COUNT) await new Promise((r) => setTimeout(r, 1)).then(pump);
  await done;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ startMs, cpu_s: (cpu.user + cpu.system) / 1e6 })}\n`);
  sock.end();
}

async function consumerRole(): Promise<void> {
  const sock = net.connect(Number(values.port), '127.0.0.1');
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  const latencies = new LatencyRecorder(COUNT - WARMUP_COUNT);
  const latenciesAll = new LatencyRecorder(COUNT);
  let received = 0;
  const cpu0 = process.cpuUsage();
  const done = new Promise<void>((resolve) => {
    sock.on(
      'data',
      frameReader((op, count, frame) => {
        if (op !== OP_DELIVER) return;
        const now = nowMs(); // one receive time per frame: the frame's messages arrive together
        for (let at = 9, i = 0; i < count; i++) {
          const len = frame.readUInt32BE(at);
          const latencyMs = now - frame.readDoubleLE(at + 4);
          latenciesAll.add(latencyMs);
          if (received + i >= WARMUP_COUNT) latencies.add(latencyMs);
          at += 4 + len;
        }
        received += count;
        sock.write(Buffer.concat([header(OP_ACK, count, 1), Buffer.alloc(1)])); // ack + credit
        if (received >= COUNT) resolve();
      }),
    );
  });
  sock.write(header(OP_ACK, PREFETCH, 0)); // credits only
  process.stdout.write('READY\n');
  await done;
  const lastMs = nowMs();
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `${JSON.stringify({ received, lastMs, p50_ms: latencies.quantileMs(0.5), p99_ms: latencies.quantileMs(0.99), p99_all_ms: latenciesAll.quantileMs(0.99), cpu_s: (cpu.user + cpu.system) / 1e6 })}\n`,
  );
  sock.end();
}

interface FloorRun {
  path: typeof PATH;
  rate: number;
  count: number;
  /** Paced runs: first messages not counted in p50/p99. */
  warmupCount: number;
}

type FloorRow = Record<string, number | string>;

/** One server, consumer and producer; returns the row. */
async function runOnce(run: FloorRun): Promise<FloorRow> {
  const dir = fs.mkdtempSync(join(tmpdir(), 'wharf-bench-floor-'));
  const server = spawnRole(SELF, ['--role', 'server', '--dir', dir, '--path', run.path]);
  try {
    const port = (await nextLine(server.lines, 'READY')).split(' ')[1];
    const common = [
      '--path',
      run.path,
      '--port',
      port,
      '--count',
      String(run.count),
      '--size',
      String(SIZE),
      '--window',
      String(WINDOW),
      '--prefetch',
      String(PREFETCH),
      '--rate',
      String(run.rate),
      '--warmup-count',
      String(run.warmupCount),
    ];
    const consumer = spawnRole(SELF, ['--role', 'consumer', ...common]);
    await nextLine(consumer.lines, 'READY');
    const serverCpu0 = cpuSecondsOf(server.proc.pid!) ?? NaN;
    const producer = spawnRole(SELF, ['--role', 'producer', ...common]);
    const p = JSON.parse(await nextLine(producer.lines, '{')) as { startMs: number; cpu_s: number };
    const c = JSON.parse(await nextLine(consumer.lines, '{')) as {
      received: number;
      lastMs: number;
      p50_ms: number;
      p99_ms: number;
      p99_all_ms: number;
      cpu_s: number;
    };
    const serverCpu = (cpuSecondsOf(server.proc.pid!) ?? NaN) - serverCpu0;
    // From the producer's first publish (after its start-up and connect), as bench/remote.ts does.
    const seconds = (c.lastMs - p.startMs) / 1000;
    return {
      system: 'floor (no broker)',
      scenario:
        run.rate > 0
          ? `latency-1k, record ${run.path}`
          : run.path === 'serial'
            ? 'queue-durable'
            : `queue-durable, record ${run.path}`,
      msgs: c.received,
      msgs_per_s: Math.round(c.received / seconds),
      p50_ms: c.p50_ms,
      p99_ms: c.p99_ms,
      ...(run.rate > 0 ? { p99_all_ms: c.p99_all_ms } : {}),
      cpu_us_per_msg: Math.round(((serverCpu + p.cpu_s + c.cpu_s) / c.received) * 1e7) / 10,
      server_cpu_us_per_msg: Math.round((serverCpu / c.received) * 1e7) / 10,
      notes: `3 processes, window ${WINDOW}, prefetch ${PREFETCH}${run.rate > 0 ? `, paced ${run.rate}/s, p50/p99 after the first ${run.warmupCount} messages (p99_all_ms: every message)` : ''}, fsync before confirm and per ack; delivery record: ${run.path}`,
    };
  } finally {
    server.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Without options: throughput (median of 3 runs, then one run per other delivery-record path) and the paced latency scenario for each path. */
async function main(): Promise<void> {
  const explicit = ['rate', 'path', 'count', 'window', 'prefetch', 'size'].some((k) => values[k] !== undefined);
  if (explicit) {
    console.log(JSON.stringify(await runOnce({ path: PATH, rate: RATE, count: COUNT, warmupCount: WARMUP_COUNT })));
  } else {
    const rows: FloorRow[] = [];
    for (let i = 0; i < 3; i++) rows.push(await runOnce({ path: 'serial', rate: 0, count: COUNT, warmupCount: 0 }));
    const rates = rows.map((r) => Number(r.msgs_per_s));
    const median = rows[rates.indexOf([...rates].sort((a, b) => a - b)[1])];
    console.log(JSON.stringify({ ...median, runs: rates.join(' / ') }));
    for (const path of ['parallel', 'none', 'single'] as const)
      console.log(JSON.stringify(await runOnce({ path, rate: 0, count: COUNT, warmupCount: 0 })));
    // As bench/remote.ts's latency-1k: 2 s of warm-up, then 10 s measured.
    for (const path of ['serial', 'parallel', 'none', 'single'] as const)
      console.log(JSON.stringify(await runOnce({ path, rate: 1000, count: 12_000, warmupCount: 2_000 })));
  }
  process.exit(0);
}

const role = values.role;
if (role === 'server') await serverRole();
else if (role === 'producer') await producerRole().then(() => process.exit(0));
else if (role === 'consumer') await consumerRole().then(() => process.exit(0));
else await main();
