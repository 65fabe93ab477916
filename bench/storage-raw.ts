// The physical limit of durable appends on this machine: a bare loop of batched writev +
// fdatasync of 1 KiB messages, no encoding, no log. Compare bench/log-append.ts against it.
// Then the latency floor of a durable queue's path at a paced 1,000 msgs/s (bench/remote.ts
// latency-1k): one 1 KiB append + fdatasync per message, and the same followed by a 32-byte append
// + fdatasync to a second file (a queue hands a message out only after its delivery record is
// durable too), started every millisecond whether or not the previous one finished.
// Run: npx tsx bench/storage-raw.ts   (prints one JSON line per batch size, then per paced path)
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const writev = promisify(fs.writev);
const fdatasync = promisify(fs.fdatasync);

const MESSAGE_BYTES = 1024;
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);

async function run(messagesPerSync: number): Promise<void> {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'wharf-bench-raw-'));
  const fd = fs.openSync(join(dir, 'raw.log'), 'w+');
  const messages = Array.from({ length: messagesPerSync }, () => Buffer.alloc(MESSAGE_BYTES, 0x61));
  let position = 0;
  let syncs = 0;
  const syncLatenciesMs: number[] = [];
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    const t0 = performance.now();
    await writev(fd, messages, position);
    position += messagesPerSync * MESSAGE_BYTES;
    await fdatasync(fd);
    syncLatenciesMs.push(performance.now() - t0);
    syncs++;
  }
  const elapsedS = (performance.now() - start) / 1000;
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
  syncLatenciesMs.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      name: `raw writev+fdatasync, ${messagesPerSync} x 1 KiB per sync`,
      msgsPerSec: Math.round((syncs * messagesPerSync) / elapsedS),
      mbPerSec: Math.round((position / elapsedS / 2 ** 20) * 10) / 10,
      syncsPerSec: Math.round(syncs / elapsedS),
      p50Ms: syncLatenciesMs[Math.floor(syncLatenciesMs.length / 2)],
      p99Ms: syncLatenciesMs[Math.floor(syncLatenciesMs.length * 0.99)],
    }),
  );
}

const PACED_MESSAGES = Number(process.env.BENCH_PACED_MESSAGES ?? 3000);

/** Appends + fdatasyncs per message, paced at 1 per ms (open loop), each message's latency recorded. */
async function paced(files: 1 | 2): Promise<void> {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'wharf-bench-raw-paced-'));
  const log = fs.openSync(join(dir, 'log'), 'w+');
  const journal = fs.openSync(join(dir, 'journal'), 'w+');
  const message = [Buffer.alloc(MESSAGE_BYTES, 0x61)];
  const op = [Buffer.alloc(32, 0x62)];
  let logPosition = 0;
  let journalPosition = 0;
  const latenciesMs: number[] = [];
  // Writes to one file are serialised (as the log's and the journal's rounds are), syncs are not.
  let logChain: Promise<void> = Promise.resolve();
  let journalChain: Promise<void> = Promise.resolve();
  const one = (): Promise<void> => {
    const t0 = performance.now();
    const at = logPosition;
    logPosition += MESSAGE_BYTES;
    const logged = (logChain = logChain.then(async () => {
      await writev(log, message, at);
      await fdatasync(log);
    }));
    const done =
      files === 1
        ? logged
        : logged.then(() => {
            const jat = journalPosition;
            journalPosition += 32;
            return (journalChain = journalChain.then(async () => {
              await writev(journal, op, jat);
              await fdatasync(journal);
            }));
          });
    return done.then(() => void latenciesMs.push(performance.now() - t0));
  };
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < PACED_MESSAGES; i++) {
    const dueMs = start + i;
    const waitMs = dueMs - performance.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    pending.push(one());
  }
  await Promise.all(pending);
  fs.closeSync(log);
  fs.closeSync(journal);
  fs.rmSync(dir, { recursive: true, force: true });
  latenciesMs.sort((a, b) => a - b);
  const q = (p: number): number =>
    Math.round(latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(latenciesMs.length * p))] * 1000) / 1000;
  console.log(
    JSON.stringify({
      name:
        files === 1
          ? 'raw paced 1,000/s: 1 KiB writev + fdatasync per message'
          : 'raw paced 1,000/s: 1 KiB writev + fdatasync, then 32 B writev + fdatasync to a second file',
      msgsPerSec: Math.round(PACED_MESSAGES / ((performance.now() - start) / 1000)),
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      p999Ms: q(0.999),
      maxMs: q(1),
    }),
  );
}

for (const perSync of [1, 100, 800, 4000]) await run(perSync);
await paced(1);
await paced(2);
