// Child process of queue.crash.test.ts: a producer and two consumers on a durable queue until killed.
// Lines on stdout (synchronous for pipes on Linux): "P a b" publishes a..b resolved,
// "D n" message n delivered (written before its ack starts), "A n" ack of n resolved.
import { Broker } from '../../src/broker/index.js';

const [dataDir, startArg] = process.argv.slice(2);
let seq = Number(startArg);
const out = (line: string): void => void process.stdout.write(line + '\n');

const broker = await Broker.open({ dataDir, fsync: 'always' });
if ((await broker.listQueues()).length === 0) await broker.createQueue('crash', { visibilityTimeoutMs: 60_000 });
out('READY');

async function produce(): Promise<void> {
  for (;;) {
    const n = 1 + Math.floor(Math.random() * 20);
    const from = seq;
    seq += n;
    await broker.publish('crash', Array.from({ length: n }, (_, i) => ({ payload: from + i })));
    out(`P ${from} ${from + n - 1}`);
  }
}

async function consumeLoop(): Promise<void> {
  for (;;) {
    const batch = await broker.receive('crash', { max: 16, waitMs: 100 });
    for (const m of batch) out(`D ${m.payload as number}`);
    await Promise.all(
      batch.map(async (m) => {
        if (Math.random() < 0.2) return; // left in flight: must come back after the crash
        await m.ack();
        out(`A ${m.payload as number}`);
      }),
    );
  }
}

void produce();
void consumeLoop();
void consumeLoop();
