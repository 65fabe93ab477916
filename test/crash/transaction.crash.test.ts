// Exactly-once across SIGKILL: a child runs transactions (ack input + publish to topic, queue and
// fanout exchange + commit offset) and atomic fan-out publishes from 16 concurrent publishers (so
// intents share journal entries and per-queue writes), and is killed at random moments.
// After each restart every transaction is wholly applied or wholly absent, never applied twice,
// and every fan-out publish is in all of its queues or in none.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Broker, type TopicMessage } from '../../src/broker/index.js';
import { runKilledChild } from './killed-child.js';

const CHILD = fileURLToPath(new URL('./transaction-crash-child.ts', import.meta.url));
const INPUTS = 300;
const RUNS = 6;

async function runOnce(
  dataDir: string,
  routeStart: number,
  killAfterMs: number,
): Promise<{ txDone: number[]; routed: number[]; recovered: number }> {
  const txDone: number[] = [];
  const routed: number[] = [];
  let recovered = 0;
  await runKilledChild(CHILD, [dataDir, String(routeStart)], killAfterMs, ([k, a]) => {
    if (k === 'T') txDone.push(Number(a));
    else if (k === 'R') routed.push(Number(a));
    else if (k === 'RECOVERED') recovered = Number(a);
  });
  return { txDone, routed, recovered };
}

async function drainQueue(broker: Broker, queue: string): Promise<number[]> {
  const got: number[] = [];
  for (;;) {
    const batch = await broker.receive(queue, { max: 1000 });
    if (batch.length === 0) return got;
    for (const m of batch) got.push(m.payload as number);
  }
}

async function readTopic(broker: Broker, topic: string): Promise<number[]> {
  const s = await broker.stats(topic);
  const end = s.kind === 'topic' ? s.partitions[0].endOffset : 0;
  const got: number[] = [];
  if (end === 0) return got;
  await new Promise<void>((resolve, reject) => {
    broker
      .subscribe(topic, { from: 'earliest' }, (m: TopicMessage) => {
        got.push(m.payload as number);
        if (got.length === end) resolve();
      })
      .then((sub) => {
        const check = setInterval(() => {
          if (got.length >= end) {
            clearInterval(check);
            void sub.close();
          }
        }, 10);
      }, reject);
  });
  return got;
}

function counts(values: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

describe('transactions and atomic routing across SIGKILL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-tx-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('each transaction is wholly applied or wholly absent; each fan-out in all queues or none', async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createQueue('in', { visibilityTimeoutMs: 600_000 });
    await broker.createQueue('outq');
    await broker.createTopic('out', { partitions: 1 });
    await broker.createTopic('src', { partitions: 1 });
    for (const q of ['f1', 'f2', 'r1', 'r2', 'r3']) await broker.createQueue(q);
    await broker.createExchange('fan', { type: 'fanout' });
    await broker.bind('fan', { queue: 'f1' });
    await broker.bind('fan', { queue: 'f2' });
    await broker.createExchange('route', { type: 'fanout' });
    for (const q of ['r1', 'r2', 'r3']) await broker.bind('route', { queue: q });
    await broker.publish(
      'in',
      Array.from({ length: INPUTS }, (_, i) => ({ payload: i })),
    );
    await broker.close();

    const txDone = new Set<number>();
    const routedDone = new Set<number>();
    let routeStart = 0;
    let recovered = 0;
    for (let run = 0; run < RUNS; run++) {
      const log = await runOnce(dir, routeStart, 150 + Math.floor(Math.random() * 500));
      log.txDone.forEach((i) => txDone.add(i));
      log.routed.forEach((n) => routedDone.add(n));
      recovered += log.recovered;
      routeStart += 100_000;
    }
    expect(txDone.size).toBeGreaterThan(10);
    expect(routedDone.size).toBeGreaterThan(10);

    broker = await Broker.open({ dataDir: dir });
    recovered += broker.recoveredIntents;
    // The kills must have hit committed-but-unfinished writes, or this test proves nothing.
    expect(recovered, 'intents rolled forward across all restarts').toBeGreaterThan(0);
    try {
      const remaining = new Set(await drainQueue(broker, 'in'));
      const outTopic = counts(await readTopic(broker, 'out'));
      const outq = counts(await drainQueue(broker, 'outq'));
      const f1 = counts(await drainQueue(broker, 'f1'));
      const f2 = counts(await drainQueue(broker, 'f2'));
      let applied = 0;
      for (let i = 0; i < INPUTS; i++) {
        const expected = remaining.has(i) ? 0 : 1;
        applied += expected;
        if (txDone.has(i)) expect(expected, `resolved transaction ${i} lost its ack`).toBe(1);
        for (const [name, c] of [
          ['out', outTopic],
          ['outq', outq],
          ['f1', f1],
          ['f2', f2],
        ] as const) {
          expect(
            c.get(i) ?? 0,
            `input ${i} (${remaining.has(i) ? 'not acked' : 'acked'}) appears ${c.get(i) ?? 0}x in ${name}`,
          ).toBe(expected);
        }
      }
      expect(applied).toBeGreaterThanOrEqual(txDone.size);
      const s = await broker.stats('src');
      expect(s.kind === 'topic' ? s.groups.g?.partitions[0].committed : -1).toBe(applied);

      const [r1, r2, r3] = [
        counts(await drainQueue(broker, 'r1')),
        counts(await drainQueue(broker, 'r2')),
        counts(await drainQueue(broker, 'r3')),
      ];
      for (const n of routedDone) expect(r1.get(n), `resolved fan-out ${n} missing`).toBe(1);
      for (const n of new Set([...r1.keys(), ...r2.keys(), ...r3.keys()])) {
        expect([r1.get(n) ?? 0, r2.get(n) ?? 0, r3.get(n) ?? 0], `fan-out ${n}`).toEqual([1, 1, 1]);
      }
    } finally {
      await broker.close();
    }
  }, 120_000);
});
