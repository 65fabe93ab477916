// Topic throughput, embedded, on disk with fsync 'always' (every publish resolves after an fsync that
// covers it). Prints one JSON line per scenario: { name, msgs, seconds, msgsPerSec, ... }.
//   npx tsx bench/topics.ts            (--quick or WHARF_BENCH_QUICK=1 for a short run;
//                                       WHARF_BENCH_PARTITIONS=n to change the partition count, default 8)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../src/broker/index.js';
import type { MessageInput } from '../src/broker/index.js';

const quick = process.env.WHARF_BENCH_QUICK === '1' || process.argv.includes('--quick');
const MESSAGE_BYTES = 1024;
const PARTITIONS = Number(process.env.WHARF_BENCH_PARTITIONS ?? 8);
const payload = new Uint8Array(MESSAGE_BYTES).fill(120);

/**
 * One result line. cpuSeconds (this process, all threads) and msgsPerCpuSec are printed beside the
 * wall-clock rate because a shared machine's load moves the wall-clock figure a lot.
 */
function report(
  name: string,
  msgs: number,
  seconds: number,
  cpu: NodeJS.CpuUsage,
  extra: Record<string, unknown> = {},
): void {
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  console.log(
    JSON.stringify({
      name,
      msgs,
      seconds: Number(seconds.toFixed(3)),
      msgsPerSec: Math.round(msgs / seconds),
      cpuSeconds: Number(cpuSeconds.toFixed(3)),
      msgsPerCpuSec: Math.round(msgs / cpuSeconds),
      ...extra,
    }),
  );
}

async function publishBatches(
  broker: Broker,
  topic: string,
  total: number,
  batchSize: number,
  publishers: number,
): Promise<void> {
  const batch: MessageInput[] = Array.from({ length: batchSize }, () => ({ payload }));
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < total) {
      sent += batchSize;
      await broker.publish(topic, batch);
    }
  };
  await Promise.all(Array.from({ length: publishers }, worker));
}

async function publishSingles(broker: Broker, topic: string, total: number, concurrency: number): Promise<void> {
  let sent = 0;
  const msg: MessageInput = { payload };
  const worker = async (): Promise<void> => {
    while (sent < total) {
      sent++;
      await broker.publish(topic, msg);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function consume(broker: Broker, topic: string, total: number): Promise<number> {
  let seen = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const t0 = performance.now();
  const sub = await broker.subscribe(topic, { group: `bench-${Date.now()}`, from: 'earliest' }, () => {
    if (++seen === total) done();
  });
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  await sub.close();
  return seconds;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-topics-'));
  try {
    const broker = await Broker.open({ dataDir: dir, fsync: 'always' });
    await broker.createTopic('batched', { partitions: PARTITIONS });
    await broker.createTopic('singles', { partitions: PARTITIONS });

    const batchedTotal = quick ? 100_000 : 1_000_000;
    let t0 = performance.now();
    let cpu0 = process.cpuUsage();
    await publishBatches(broker, 'batched', batchedTotal, 100, 8);
    report(
      'topic publish 1KiB, batches of 100, 8 publishers, fsync always',
      batchedTotal,
      (performance.now() - t0) / 1000,
      process.cpuUsage(cpu0),
      { messageBytes: MESSAGE_BYTES, partitions: PARTITIONS },
    );

    const singlesTotal = quick ? 20_000 : 100_000;
    t0 = performance.now();
    cpu0 = process.cpuUsage();
    await publishSingles(broker, 'singles', singlesTotal, 64);
    report(
      'topic publish 1KiB, single messages, 64 concurrent, fsync always',
      singlesTotal,
      (performance.now() - t0) / 1000,
      process.cpuUsage(cpu0),
      { messageBytes: MESSAGE_BYTES, partitions: PARTITIONS },
    );
    await broker.close();

    // A fresh broker process state: the consume reads from disk, not from anything cached by the publisher.
    const reader = await Broker.open({ dataDir: dir, fsync: 'always' });
    cpu0 = process.cpuUsage();
    const seconds = await consume(reader, 'batched', batchedTotal);
    report('topic consume 1KiB from disk, fresh group, 1 member', batchedTotal, seconds, process.cpuUsage(cpu0), {
      messageBytes: MESSAGE_BYTES,
      partitions: PARTITIONS,
    });
    await reader.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
