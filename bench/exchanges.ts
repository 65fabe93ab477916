// Exchange benchmarks (JSON lines on stdout):
//  1. topic routing with BINDINGS bindings: routing only (the trie walk that picks targets, no I/O),
//     compared with a scan of every binding per message, and end to end (in-memory broker).
//  2. fan-out: a fanout exchange bound to 3 durable queues (fsync 'always'); single 1 KiB messages
//     (each an atomic 3-target write through the intent journal) from 1 publisher (sequential) and
//     from PUBLISHERS concurrent publishers, while one consumer per queue receives and acks.
//     Reports published msgs/s and delivered msgs/s (received+acked copies across the 3 queues),
//     next to a direct publish to one queue with the same publishers as a baseline.
// Run: npx tsx bench/exchanges.ts [--messages 20000] [--sequential-messages 1000] [--bindings 10000] [--publishers 64]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../src/broker/index.js';
import { splitWords, TopicTrie } from '../src/broker/exchanges/topic-trie.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const MESSAGES = arg('messages', 20_000);
const BINDINGS = arg('bindings', 10_000);
const PUBLISHERS = arg('publishers', 64);
const SEQUENTIAL_MESSAGES = arg('sequential-messages', 1_000);
const print = (row: Record<string, unknown>): void => console.log(JSON.stringify(row));

/** One broker per scenario, so each starts from empty queues and journals. */
async function withBroker(fn: (broker: Broker) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-x-'));
  const broker = await Broker.open({ dataDir: dir, fsync: 'always' });
  try {
    await fn(broker);
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `publishers` loops, each awaiting its publish before the next: `publishers` publishes in flight. */
function publishAll(publishers: number, messages: number, publish: () => Promise<unknown>): Promise<void> {
  let next = 0;
  return Promise.all(
    Array.from({ length: publishers }, async () => {
      while (next < messages) {
        next++;
        await publish();
      }
    }),
  ).then(() => undefined);
}

const payload = new Uint8Array(1024).fill(7);

async function directBaseline(publishers: number, messages: number): Promise<void> {
  await withBroker(async (broker) => {
    await broker.createQueue('direct');
    const t0 = performance.now();
    await publishAll(publishers, messages, () => broker.publish('direct', { type: 'order.created', payload }));
    print({
      name: 'baseline: direct publish to 1 queue (fsync always, 1 KiB, single-message publishes)',
      msgsPerSec: Math.round(messages / ((performance.now() - t0) / 1000)),
      publishers,
      messages,
    });
  });
}

async function fanOut(publishers: number, messages: number): Promise<void> {
  await withBroker(async (broker) => {
    const queues = ['fan-1', 'fan-2', 'fan-3'];
    await broker.createExchange('fan', { type: 'fanout' });
    for (const q of queues) {
      await broker.createQueue(q, { visibilityTimeoutMs: 600_000 });
      await broker.bind('fan', { queue: q });
    }
    const started = performance.now();
    let delivered = 0;
    const consumers = queues.map(async (q) => {
      let got = 0;
      while (got < messages) {
        const batch = await broker.receive(q, { max: 500, waitMs: 1000 });
        got += batch.length;
        await Promise.all(batch.map((m) => m.ack()));
        delivered += batch.length;
      }
    });
    await publishAll(publishers, messages, () => broker.publish('fan', { type: 'order.created', payload }));
    const publishedSec = (performance.now() - started) / 1000;
    await Promise.all(consumers);
    const totalSec = (performance.now() - started) / 1000;
    print({
      name: 'exchange fan-out to 3 queues (fsync always, 1 KiB, single-message publishes, one consumer per queue receiving and acking)',
      publishers,
      // The report's msgs/s column: copies delivered per second (what a fan-out is measured by).
      msgsPerSec: Math.round(delivered / totalSec),
      publishedMsgsPerSec: Math.round(messages / publishedSec),
      deliveredMsgsPerSec: Math.round(delivered / totalSec),
      messages,
      copiesDelivered: delivered,
      seconds: Number(totalSec.toFixed(2)),
    });
  });
}

/** BINDINGS patterns over a vocabulary like real event names: region.service.event, with wildcards. */
function patterns(): string[] {
  const out: string[] = [];
  for (let i = 0; i < BINDINGS; i++) {
    const region = `r${i % 20}`;
    const svc = `svc${Math.floor(i / 20) % 500}`;
    const kind = i % 10;
    out.push(
      kind === 0
        ? `${region}.${svc}.#`
        : kind === 1
          ? `*.${svc}.created`
          : kind === 2
            ? `${region}.*.evt${i % 7}`
            : `${region}.${svc}.evt${i}`,
    );
  }
  return out;
}

function keys(n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) => `r${i % 20}.svc${(i * 7) % 500}.${i % 3 === 0 ? 'created' : `evt${i % 13}`}`,
  );
}

function referenceMatch(p: string[], k: string[]): boolean {
  if (p.length === 0) return k.length === 0;
  if (p[0] === '#') {
    for (let s = 0; s <= k.length; s++) if (referenceMatch(p.slice(1), k.slice(s))) return true;
    return false;
  }
  return k.length > 0 && (p[0] === '*' || p[0] === k[0]) && referenceMatch(p.slice(1), k.slice(1));
}

async function topicRouting(): Promise<void> {
  const pats = patterns();
  const ks = keys(50_000);
  const trie = new TopicTrie<number>();
  pats.forEach((p, i) => trie.add(p, i));
  let matched = 0;
  let t0 = performance.now();
  for (const k of ks) matched += trie.match(k).size;
  let sec = (performance.now() - t0) / 1000;
  print({
    name: `topic routing trie, ${BINDINGS} bindings (routing only)`,
    msgsPerSec: Math.round(ks.length / sec),
    avgMatches: Number((matched / ks.length).toFixed(2)),
  });

  const split = pats.map(splitWords);
  const scanKeys = ks.slice(0, 2_000);
  t0 = performance.now();
  let scanMatched = 0;
  for (const k of scanKeys) {
    const kw = splitWords(k);
    for (const p of split) if (referenceMatch(p, kw)) scanMatched++;
  }
  sec = (performance.now() - t0) / 1000;
  print({
    name: `topic routing by scanning every binding, ${BINDINGS} bindings (routing only, for comparison)`,
    msgsPerSec: Math.round(scanKeys.length / sec),
    avgMatches: Number((scanMatched / scanKeys.length).toFixed(2)),
  });

  // End to end: an in-memory broker, BINDINGS bindings spread over 10 queues.
  const broker = await Broker.open({ inMemory: true });
  try {
    await broker.createExchange('events', { type: 'topic' });
    for (let q = 0; q < 10; q++) await broker.createQueue(`sink-${q}`, { maxLength: 10_000_000 });
    t0 = performance.now();
    for (let i = 0; i < pats.length; i += 1000) {
      await Promise.all(
        pats
          .slice(i, i + 1000)
          .map((p, j) => broker.bind('events', { queue: `sink-${Math.floor((i + j) / 10) % 10}` }, { pattern: p })),
      );
    }
    const bindSec = (performance.now() - t0) / 1000;
    const n = Math.min(MESSAGES, 20_000);
    let routed = 0;
    t0 = performance.now();
    for (let i = 0; i < n; i += 100) {
      const results = await Promise.all(
        ks.slice(i, i + 100).map((k) => broker.publish('events', { type: k, payload: i })),
      );
      for (const r of results) routed += r.routed ?? 0;
    }
    sec = (performance.now() - t0) / 1000;
    print({
      name: `topic exchange publish, ${BINDINGS} bindings, 10 queues (in-memory broker, end to end)`,
      msgsPerSec: Math.round(n / sec),
      avgTargets: Number((routed / n).toFixed(2)),
      bindSeconds: Number(bindSec.toFixed(2)),
    });
  } finally {
    await broker.close();
  }
}

await topicRouting();
// Sequential (one publish in flight) and concurrent (PUBLISHERS in flight); fewer messages for the
// sequential runs, whose rate is bound by two fsyncs per publish.
await directBaseline(1, SEQUENTIAL_MESSAGES);
await fanOut(1, SEQUENTIAL_MESSAGES);
await directBaseline(PUBLISHERS, MESSAGES);
await fanOut(PUBLISHERS, MESSAGES);
