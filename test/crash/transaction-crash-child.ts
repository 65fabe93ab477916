// Child process of transaction.crash.test.ts: runs transactions (ack an input, publish to a topic,
// a queue and a fanout exchange, commit an offset) and atomic fan-out publishes (16 concurrent
// publishers) until SIGKILLed.
// Report lines (child-report.ts): "RECOVERED n" intents rolled forward at open, "READY", "T i" transaction for input i resolved, "R n" fan-out publish n resolved.
import { Broker } from '../../src/broker/index.js';
import { report, reportReady } from './child-report.js';

const [dataDir, routeStartArg] = process.argv.slice(2);
const broker = await Broker.open({ dataDir, fsync: 'always' });

const stats = await broker.stats('src');
let committed = stats.kind === 'topic' ? (stats.groups.g?.partitions[0]?.committed ?? 0) : 0;
if (committed < 0) committed = 0;
report(`RECOVERED ${broker.recoveredIntents}`);
reportReady();

async function transactions(): Promise<void> {
  for (;;) {
    const [m] = await broker.receive('in', { max: 1, waitMs: 50 });
    if (m === undefined) continue;
    const i = m.payload as number;
    await broker.transaction(async (tx) => {
      await tx.ack(m);
      await tx.publish('out', { type: 'out', payload: i });
      await tx.publish('outq', { type: 'outq', payload: i });
      await tx.publish('fan', { type: 'fan', payload: i });
      await tx.commitOffset({ topic: 'src', group: 'g', partition: 0, offset: committed + 1 });
    });
    committed++;
    report(`T ${i}`);
  }
}

/** Concurrent fan-out publishers, so intents share journal entries and merged per-queue writes. */
const ROUTING_PUBLISHERS = 16;

async function routing(publisher: number): Promise<void> {
  for (let n = Number(routeStartArg) + publisher; ; n += ROUTING_PUBLISHERS) {
    await broker.publish('route', { type: 'r', payload: n });
    report(`R ${n}`);
  }
}

void transactions();
for (let p = 0; p < ROUTING_PUBLISHERS; p++) void routing(p);
