// The physical limit of durable appends on this machine: a bare loop of batched writev +
// fdatasync of 1 KiB messages, no encoding, no log. Compare bench/log-append.ts against it.
// Run: npx tsx bench/storage-raw.ts   (prints one JSON line per batch size)
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

for (const perSync of [1, 100, 800, 4000]) await run(perSync);
