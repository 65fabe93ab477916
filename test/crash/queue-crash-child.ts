// Child process of queue.crash.test.ts: a producer and two consumers on a durable queue until killed.
// Report lines (child-report.ts: written synchronously, so SIGKILL loses none): "P a b" publishes a..b resolved,
// "D n" message n delivered (written before its ack starts), "A n" ack of n resolved.
import { Broker } from '../../src/broker/index.js';
import { report, reportReady } from './child-report.js';

const [dataDir, startArg] = process.argv.slice(2);
let seq = Number(startArg);

const broker = await Broker.open({ dataDir, fsync: 'always' });
if ((await broker.listQueues()).length === 0) await broker.createQueue('crash', { visibilityTimeoutMs: 60_000 });
reportReady();

async function produce(): Promise<void> {
  for (;;) {
    const n = 1 + Math.floor(Math.random() * 20);
    const from = seq;
    seq += n;
    await broker.publish(
      'crash',
      Array.from({ length: n }, (_, i) => ({ payload: from + i })),
    );
    report(`P ${from} ${from + n - 1}`);
  }
}

async function consumeLoop(): Promise<void> {
  for (;;) {
    const batch = await broker.receive('crash', { max: 16, waitMs: 100 });
    for (const m of batch) report(`D ${m.payload as number}`);
    await Promise.all(
      batch.map(async (m) => {
        if (Math.random() < 0.2) return; // left in flight: must come back after the crash
        await m.ack();
        report(`A ${m.payload as number}`);
      }),
    );
  }
}

void produce();
void consumeLoop();
void consumeLoop();
