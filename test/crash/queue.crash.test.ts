// Crash safety of queues: a broker process with a producer and acking consumers is killed with
// SIGKILL at random moments, 20 times. No resolved publish may be lost, no acked message may come back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { runKilledChild } from './killed-child.js';

const CHILD = fileURLToPath(new URL('./queue-crash-child.ts', import.meta.url));
const RUNS = 20;

interface RunLog {
  published: number[];
  delivered: number[];
  acked: number[];
  maxSeq: number;
}

async function runOnce(dataDir: string, start: number, killAfterMs: number): Promise<RunLog> {
  const log: RunLog = { published: [], delivered: [], acked: [], maxSeq: start };
  await runKilledChild(CHILD, [dataDir, String(start)], killAfterMs, ([k, a, b]) => {
    if (k === 'P') for (let i = Number(a); i <= Number(b); i++) log.published.push(i);
    else if (k === 'D') log.delivered.push(Number(a));
    else if (k === 'A') log.acked.push(Number(a));
  });
  log.maxSeq = Math.max(start, ...log.published.map((x) => x + 1));
  return log;
}

/** One broker data directory killed `runs` times, then checked. */
async function lane(dir: string, runs: number): Promise<number> {
  const published = new Set<number>();
  const delivered = new Set<number>();
  const acked = new Set<number>();
  let seq = 0;
  for (let run = 0; run < runs; run++) {
    // Leave room above seq: a publish in flight at the kill may be durable without its "P" line.
    const log = await runOnce(dir, seq + 1000, 100 + Math.floor(Math.random() * 400));
    for (const id of log.delivered) expect(acked.has(id), `message ${id} delivered after its ack resolved`).toBe(false);
    log.published.forEach((id) => published.add(id));
    log.delivered.forEach((id) => delivered.add(id));
    log.acked.forEach((id) => acked.add(id));
    seq = Math.max(seq + 1000, log.maxSeq);
  }

  const broker = await Broker.open({ dataDir: dir });
  const remaining = new Set<number>();
  try {
    for (;;) {
      const batch = await broker.receive('crash', { max: 1000 });
      if (batch.length === 0) break;
      for (const m of batch) {
        const id = m.payload as number;
        expect(acked.has(id), `acked message ${id} came back`).toBe(false);
        remaining.add(id);
        await m.ack();
      }
    }
  } finally {
    await broker.close();
  }
  // Every resolved publish is still in the queue or was delivered (and maybe acked).
  expect([...published].filter((id) => !remaining.has(id) && !delivered.has(id))).toEqual([]);
  // A delivered message that is gone must have been acked; only acks resolved in a run's last
  // moments (killed before their "A" line) may lack the line: at most one consumer batch per run.
  const goneUnacked = [...delivered].filter((id) => !acked.has(id) && !remaining.has(id));
  expect(goneUnacked.length).toBeLessThanOrEqual(runs * 32);
  return acked.size;
}

describe('queue crash safety', () => {
  it('loses no resolved publish and redelivers no acked message across 20 SIGKILLs', { timeout: 150_000 }, async () => {
    // Two brokers in two directories, killed RUNS / 2 times each, side by side (halves the wall time).
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'wharf-queue-crash-')));
    try {
      const ackedCounts = await Promise.all(dirs.map((d) => lane(d, RUNS / 2)));
      expect(ackedCounts.every((n) => n > 50)).toBe(true);
    } finally {
      dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    }
  });
});
