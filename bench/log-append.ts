// PartitionLog throughput on disk: durable publish (fsync 'always', group commit) with concurrent
// appenders sending batches of 1 KiB records, then consumption by reading the log back from disk
// after a reopen. Run: npx tsx bench/log-append.ts   (prints JSON lines)
// Env: BENCH_RECORDS (default 1,500,000), BENCH_APPENDERS (8), BENCH_BATCH (100).
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { openDiskStorage, type RecordInput } from '../src/storage/index.js';

const TOTAL_RECORDS = Number(process.env.BENCH_RECORDS ?? 1_500_000);
const APPENDERS = Number(process.env.BENCH_APPENDERS ?? 8);
const BATCH_RECORDS = Number(process.env.BENCH_BATCH ?? 100);
const VALUE_BYTES = 1024;
const READ_MAX_BYTES = 1024 * 1024;

const dir = fs.mkdtempSync(join(os.tmpdir(), 'wharf-bench-log-'));
const logOptions = {
  fsync: 'always',
  fsyncIntervalMs: 1000,
  segmentBytes: 128 * 2 ** 20,
  segmentMs: 7 * 86_400_000,
  indexIntervalBytes: 4096,
} as const;

function makeBatch(i: number): RecordInput[] {
  const value = Buffer.alloc(VALUE_BYTES, 0x61 + (i % 26));
  const key = Buffer.from(`key-${i}`);
  const ts = Date.now();
  return Array.from({ length: BATCH_RECORDS }, () => ({ key, value, headers: [], timestampMs: ts }));
}

async function benchAppend(): Promise<void> {
  const storage = await openDiskStorage(dir);
  const log = await storage.openLog(['bench', '0'], logOptions);
  const batches = Array.from({ length: 16 }, (_, i) => makeBatch(i)); // reused: measure the log, not the generator
  const batchesTotal = Math.ceil(TOTAL_RECORDS / BATCH_RECORDS);
  let next = 0;
  const latenciesMs: number[] = [];
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: APPENDERS }, async () => {
      while (next < batchesTotal) {
        const i = next++;
        const t0 = performance.now();
        await log.append(batches[i % batches.length]);
        latenciesMs.push(performance.now() - t0);
      }
    }),
  );
  const elapsedS = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  latenciesMs.sort((a, b) => a - b);
  const fsyncCount = (log as unknown as { fsyncCount: number }).fsyncCount;
  console.log(
    JSON.stringify({
      name: `log append, fsync always, ${APPENDERS} appenders x ${BATCH_RECORDS} x 1 KiB`,
      msgsPerSec: Math.round((batchesTotal * BATCH_RECORDS) / elapsedS),
      mbPerSec: Math.round((log.sizeBytes / elapsedS / 2 ** 20) * 10) / 10,
      records: batchesTotal * BATCH_RECORDS,
      fsyncs: fsyncCount,
      recordsPerFsync: Math.round((batchesTotal * BATCH_RECORDS) / fsyncCount),
      // CPU of this process per record (main thread + libuv pool): what the machine's load does not distort.
      cpuUsPerMsg: Math.round(((cpu.user + cpu.system) / (batchesTotal * BATCH_RECORDS)) * 100) / 100,
      loadAvg1m: Math.round(os.loadavg()[0] * 10) / 10,
      p50Ms: latenciesMs[Math.floor(latenciesMs.length / 2)],
      p99Ms: latenciesMs[Math.floor(latenciesMs.length * 0.99)],
    }),
  );
  await storage.close();
}

async function benchRead(): Promise<void> {
  const storage = await openDiskStorage(dir);
  const log = await storage.openLog(['bench', '0'], logOptions);
  const rssBefore = process.memoryUsage().rss;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let offset = log.startOffset;
  let records = 0;
  let bytes = 0;
  while (offset < log.endOffset) {
    const batch = await log.read(offset, { maxBytes: READ_MAX_BYTES });
    for (const r of batch) bytes += r.value!.byteLength;
    records += batch.length;
    offset = batch[batch.length - 1].offset + 1;
  }
  const elapsedS = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  console.log(
    JSON.stringify({
      name: `log read from disk (decoded records, ${READ_MAX_BYTES / 1024} KiB reads)`,
      msgsPerSec: Math.round(records / elapsedS),
      mbPerSec: Math.round((bytes / elapsedS / 2 ** 20) * 10) / 10,
      records,
      rssGrowthMb: Math.round((process.memoryUsage().rss - rssBefore) / 2 ** 20),
      cpuUsPerMsg: Math.round(((cpu.user + cpu.system) / records) * 100) / 100,
      loadAvg1m: Math.round(os.loadavg()[0] * 10) / 10,
      note: 'page cache warm (the log was just written)',
    }),
  );
  const startRaw = performance.now();
  offset = log.startOffset;
  let batches = 0;
  while (offset < log.endOffset) {
    const raw = await log.readBatches(offset, { maxBytes: READ_MAX_BYTES });
    batches += raw.length;
    const last = raw[raw.length - 1];
    const view = Buffer.from(last.buffer, last.byteOffset, last.byteLength);
    offset = view.readInt32BE(0) * 2 ** 32 + view.readUInt32BE(4) + view.readInt32BE(23) + 1;
  }
  const rawS = (performance.now() - startRaw) / 1000;
  console.log(
    JSON.stringify({
      name: `log readBatches from disk (raw, CRC-checked, ${READ_MAX_BYTES / 1024} KiB reads)`,
      msgsPerSec: Math.round(records / rawS),
      batches,
    }),
  );
  await storage.close();
}

try {
  await benchAppend();
  await benchRead();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
