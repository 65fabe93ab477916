// Idempotent producer across SIGKILL: a child publishes batches with a producerId and sequences to a
// topic, a queue and an exchange and is killed at random moments; after each restart the parent
// re-sends every batch the child started. Confirmed batches come back as duplicates, and every
// target (and every queue and topic the exchange routes to) holds each sequence exactly once —
// also the batches the crash caught stored but unconfirmed.
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { TopicStats } from '../../src/broker/index.js';
import { tempDir, waitFor } from '../broker/topics-helpers.js';
import { runKilledChild } from './killed-child.js';
import { TARGETS, batchOf } from './producer-batches.js';

const CHILD = fileURLToPath(new URL('./producer-crash-child.ts', import.meta.url));
const KILLS = 4;
const data = tempDir('wharf-producer-crash-');
afterAll(() => data.cleanup());

type Batch = { target: string; from: number; to: number };

async function runOnce(firstSequence: number): Promise<{ started: Batch[]; confirmed: Set<string> }> {
  const started: Batch[] = [];
  const confirmed = new Set<string>();
  await runKilledChild(
    CHILD,
    [data.dir, String(firstSequence)],
    200 + Math.floor(Math.random() * 600),
    ([k, target, from, to]) => {
      if (k === 'S') started.push({ target, from: Number(from), to: Number(to) });
      else if (k === 'P') confirmed.add(`${target} ${from} ${to}`);
    },
  );
  return { started, confirmed };
}

/** Sequences stored in a topic, in log order (repeats kept). */
async function topicSequences(broker: Broker, topic: string): Promise<number[]> {
  const stats = (await broker.stats(topic)) as TopicStats;
  const expected = stats.partitions.reduce((n, p) => n + p.endOffset - p.startOffset, 0);
  const seen: number[] = [];
  const sub = await broker.subscribe(
    topic,
    { from: 'earliest' },
    (m) => void seen.push((m.payload as { s: number }).s),
  );
  await waitFor(() => seen.length === expected, `${expected} messages of ${topic}`, 20_000);
  await sub.close();
  return seen;
}

/** Sequences stored in a queue (repeats kept); leaves them in flight. */
async function queueSequences(broker: Broker, queue: string): Promise<number[]> {
  const seen: number[] = [];
  for (;;) {
    const batch = await broker.receive(queue, { max: 1000 });
    if (batch.length === 0) return seen;
    for (const m of batch) seen.push((m.payload as { s: number }).s);
  }
}

describe('idempotent producer across SIGKILL', () => {
  it(
    `re-sending every unconfirmed batch after ${KILLS} crashes stores each message exactly once`,
    { timeout: 120_000 },
    async () => {
      let broker = await Broker.open({ dataDir: data.dir });
      await broker.createTopic('t', { partitions: 3, dedupWindowMs: 0 }); // no dedupId window: only producer ids dedupe
      await broker.createQueue('q', { dedupWindowMs: 0 });
      await broker.createQueue('xq');
      await broker.createTopic('xt', { partitions: 2 });
      await broker.createExchange('ex', { type: 'fanout' });
      await broker.bind('ex', { queue: 'xq' });
      await broker.bind('ex', { topic: 'xt' });
      await broker.close();

      let firstSequence = 0;
      let unconfirmed = 0;
      /** Every sequence tried per target (a run starts all targets past the highest of the last run: gaps are fine). */
      const tried = new Map<string, number[]>(TARGETS.map((t) => [t, []]));
      for (let k = 0; k < KILLS; k++) {
        const { started, confirmed } = await runOnce(firstSequence);
        expect(confirmed.size).toBeGreaterThan(TARGETS.length); // it was publishing when killed
        broker = await Broker.open({ dataDir: data.dir });
        try {
          // Unconfirmed first, concurrently, the way a reconnecting client re-sends its window.
          const retries = started.filter((b) => !confirmed.has(`${b.target} ${b.from} ${b.to}`));
          unconfirmed += retries.length;
          await Promise.all(retries.map((b) => broker.publish(b.target, batchOf(b.target, b.from, b.to))));
          for (const b of started) {
            if (!confirmed.has(`${b.target} ${b.from} ${b.to}`)) continue;
            const results = await broker.publish(b.target, batchOf(b.target, b.from, b.to));
            expect(results.every((r) => r.duplicate === true)).toBe(true);
          }
        } finally {
          await broker.close();
        }
        for (const b of started) for (let n = b.from; n <= b.to; n++) tried.get(b.target)!.push(n);
        firstSequence = Math.max(firstSequence, ...started.map((b) => b.to + 1));
      }
      expect(unconfirmed).toBeGreaterThan(0); // the kills caught batches in flight

      broker = await Broker.open({ dataDir: data.dir });
      try {
        const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
        expect(sorted(await topicSequences(broker, 't'))).toEqual(sorted(tried.get('t')!));
        expect(sorted(await queueSequences(broker, 'q'))).toEqual(sorted(tried.get('q')!));
        expect(sorted(await topicSequences(broker, 'xt'))).toEqual(sorted(tried.get('ex')!));
        expect(sorted(await queueSequences(broker, 'xq'))).toEqual(sorted(tried.get('ex')!));
      } finally {
        await broker.close();
      }
    },
  );
});
