// Child process of transaction.crash.test.ts: runs transactions (ack an input, publish to a topic,
// a queue and a fanout exchange, commit an offset) and atomic fan-out publishes until SIGKILLed.
// Stdout lines: "RECOVERED n" intents rolled forward at open, "READY", "T i" transaction for input i resolved, "R n" fan-out publish n resolved.
import { Broker } from '../../src/broker/index.js';

const [dataDir, routeStartArg] = process.argv.slice(2);
const out = (line: string): void => void process.stdout.write(line + '\n');
const broker = await Broker.open({ dataDir, fsync: 'always' });

const stats = await broker.stats('src');
let committed = stats.kind === 'topic' ? (stats.groups.g?.partitions[0]?.committed ?? 0) : 0;
if (committed < 0) committed = 0;
out(`RECOVERED ${broker.recoveredIntents}`);
out('READY');

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
    out(`T ${i}`);
  }
}

async function routing(): Promise<void> {
  for (let n = Number(routeStartArg); ; n++) {
    await broker.publish('route', { type: 'r', payload: n });
    out(`R ${n}`);
  }
}

void transactions();
void routing();
