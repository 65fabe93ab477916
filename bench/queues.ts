// Queue benchmarks (JSON lines on stdout):
//  1. durable throughput: a producer and a consumer running together on one queue, 1 KiB messages,
//     fsync 'always', every message acked (acks group-committed). Reports end-to-end msgs/s: the
//     median of RUNS runs (a fresh broker each), with every run's figure beside it, since one run
//     on a shared 2-core machine swings with whatever else is scheduled.
//  2. memory: a backlog of BACKLOG messages (published with fsync 'never' to save time), then RSS
//     after reopening the broker and after one receive.
// Run: npx tsx bench/queues.ts [--messages 500000] [--runs 3] [--backlog 10000000] [--skip-memory]
//      [--stamp]  (publish with producerId + sequence, as the remote client does: the idempotent producer's cost)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker } from '../src/broker/index.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const benchDir = dirname(fileURLToPath(import.meta.url));
const MESSAGES = arg('messages', 500_000);
const RUNS = arg('runs', 3);
const STAMP = process.argv.includes('--stamp');
const BACKLOG = arg('backlog', 10_000_000);
const rssMb = (): number => Math.round(process.memoryUsage().rss / 1048576);

interface ThroughputRun {
  msgsPerSec: number;
  cpuUsPerMsg: number;
  publishMsgsPerSec: number;
  seconds: number;
  rssMb: number;
}

async function throughput(): Promise<void> {
  const runs: ThroughputRun[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await throughputRun());
  const median = [...runs].sort((a, b) => a.msgsPerSec - b.msgsPerSec)[Math.floor((runs.length - 1) / 2)];
  console.log(
    JSON.stringify({
      bench: STAMP ? 'queue.durable.endToEnd.idempotentProducer' : 'queue.durable.endToEnd',
      messages: MESSAGES,
      messageBytes: 1024,
      fsync: 'always',
      msgsPerSec: median.msgsPerSec,
      cpuUsPerMsg: median.cpuUsPerMsg,
      publishMsgsPerSec: median.publishMsgsPerSec,
      seconds: median.seconds,
      rssMb: median.rssMb,
      runs: runs.map((r) => r.msgsPerSec).join(' / '),
    }),
  );
}

async function throughputRun(): Promise<ThroughputRun> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-q-'));
  const broker = await Broker.open({ dataDir: dir, fsync: 'always' });
  try {
    await broker.createQueue('bench', { visibilityTimeoutMs: 120_000 });
    const payload = new Uint8Array(1024).fill(7);
    const batch = 500;
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    let acked = 0;
    let sequence = 0;
    const consumerDone = new Promise<void>((resolve) => {
      void broker.consume('bench', { concurrency: 2000, prefetch: 4000 }, () => {
        if (++acked === MESSAGES) resolve();
      });
    });
    const producer = (async () => {
      const inFlight: Promise<unknown>[] = [];
      for (let sent = 0; sent < MESSAGES; sent += batch) {
        const n = Math.min(batch, MESSAGES - sent);
        inFlight.push(
          broker.publish(
            'bench',
            Array.from({ length: n }, () =>
              STAMP ? { payload, producerId: 'bench-producer', sequence: sequence++ } : { payload },
            ),
          ),
        );
        if (inFlight.length >= 8) await inFlight.shift();
      }
      await Promise.all(inFlight);
      return performance.now();
    })();
    const producedAt = await producer;
    await consumerDone;
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      msgsPerSec: Math.round(MESSAGES / seconds),
      cpuUsPerMsg: Math.round(((cpu.user + cpu.system) / MESSAGES) * 10) / 10,
      publishMsgsPerSec: Math.round(MESSAGES / ((producedAt - started) / 1000)),
      seconds: Number(seconds.toFixed(2)),
      rssMb: rssMb(),
    };
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function memory(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-qmem-'));
  try {
    const broker = await Broker.open({ dataDir: dir, fsync: 'never' });
    await broker.createQueue('backlog', { segmentBytes: 256 * 1024 * 1024 });
    const started = performance.now();
    const batch = 5000;
    const msgs = Array.from({ length: batch }, (_, i) => ({ payload: i }));
    const inFlight: Promise<unknown>[] = [];
    for (let sent = 0; sent < BACKLOG; sent += batch) {
      inFlight.push(broker.publish('backlog', msgs.slice(0, Math.min(batch, BACKLOG - sent))));
      if (inFlight.length >= 4) await inFlight.shift();
    }
    await Promise.all(inFlight);
    const publishSeconds = (performance.now() - started) / 1000;
    await broker.close();
    // Measured in a fresh process: this one's heap still holds what publishing the backlog allocated.
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', join(benchDir, 'lib', 'queue-backlog-rss.ts'), dir],
      { encoding: 'utf8' },
    );
    const measured = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    console.log(
      JSON.stringify({
        bench: 'queue.memory.backlog',
        messages: BACKLOG,
        publishSeconds: Number(publishSeconds.toFixed(1)),
        ...measured,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await throughput();
if (!process.argv.includes('--skip-memory')) await memory();
