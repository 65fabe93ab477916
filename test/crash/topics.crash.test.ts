// kill -9 under load, 20 times: after every reopen, each publish that had resolved (fsync 'always')
// is stored at the offset it was given, with its payload intact and per-key order kept.
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { TopicMessage, TopicStats } from '../../src/broker/index.js';
import { tempDir, waitFor } from '../broker/topics-helpers.js';
import { runKilledChild } from './killed-child.js';

const CHILD = fileURLToPath(new URL('./topics-crash-child.ts', import.meta.url));
const KILLS = 20;
/** Independent data dirs killed in parallel: child start-up (tsx) dominates, and this keeps 20 kills near 25 s on an idle 2-core machine. */
const LANES = 4;
const lanes = Array.from({ length: LANES }, () => tempDir('wharf-topic-crash-'));
afterAll(() => lanes.forEach((l) => l.cleanup()));

function bodyFor(runId: string, seq: number): string {
  return `${runId}:${seq}:`.padEnd(64 + (seq % 200), String.fromCharCode(97 + (seq % 26)));
}

interface Ack {
  seq: number;
  partition: number;
  offset: number;
}

/** Runs the child until a random moment after it is publishing, then SIGKILLs it. */
async function runAndKill(dir: string, run: string): Promise<Ack[]> {
  const acks: Ack[] = [];
  await runKilledChild(CHILD, [dir, run], 50 + Math.floor(Math.random() * 400), ([tag, r, seq, partition, offset]) => {
    if (tag === 'ok' && r === run)
      acks.push({ seq: Number(seq), partition: Number(partition), offset: Number(offset) });
  });
  return acks;
}

/** Every stored message of the topic, by partition and offset. */
async function readAll(broker: Broker): Promise<Map<string, TopicMessage>> {
  const stats = (await broker.stats('crash')) as TopicStats;
  const expected = stats.partitions.reduce((n, p) => n + p.endOffset - p.startOffset, 0);
  const byPosition = new Map<string, TopicMessage>();
  const sub = await broker.subscribe(
    'crash',
    { from: 'earliest' },
    (m) => void byPosition.set(`${m.partition}:${m.offset}`, m),
  );
  await waitFor(() => byPosition.size === expected, `${expected} stored messages`, 20_000);
  await sub.close();
  return byPosition;
}

describe('topics: crash safety', () => {
  it(`every resolved publish survives SIGKILL (${KILLS} kills)`, { timeout: 240_000 }, async () => {
    const acked = await Promise.all(lanes.map((lane, l) => killLoop(lane.dir, l, KILLS / LANES)));
    expect(acked.reduce((a, b) => a + b, 0)).toBeGreaterThan(KILLS); // the children really were publishing when killed
  });
});

/** Kills a publishing child `kills` times; after each, checks every resolved publish. Returns the acks seen. */
async function killLoop(dir: string, lane: number, kills: number): Promise<number> {
  let totalAcks = 0;
  for (let k = 0; k < kills; k++) {
    const run = `l${lane}r${k}`;
    const acks = await runAndKill(dir, run);
    totalAcks += acks.length;
    const broker = await Broker.open({ dataDir: dir });
    try {
      const stored = await readAll(broker);
      for (const ack of acks) {
        const m = stored.get(`${ack.partition}:${ack.offset}`);
        expect(m, `run ${run} seq ${ack.seq} at ${ack.partition}:${ack.offset}`).toBeDefined();
        expect(m!.payload).toEqual({ run, seq: ack.seq, body: bodyFor(run, ack.seq) });
        expect(m!.key).toBe(`key-${ack.seq % 7}`);
      }
      // Per key, a later seq sits at a later offset of the same partition.
      const lastOffsetOfKey = new Map<string, number>();
      for (const ack of [...acks].sort((a, b) => a.seq - b.seq)) {
        const key = `key-${ack.seq % 7}`;
        const prev = lastOffsetOfKey.get(key);
        if (prev !== undefined) expect(ack.offset).toBeGreaterThan(prev);
        lastOffsetOfKey.set(key, ack.offset);
      }
    } finally {
      await broker.close();
    }
  }
  return totalAcks;
}
