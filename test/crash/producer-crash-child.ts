// Child process of producer.crash.test.ts: publishes idempotent batches (one producerId, consecutive
// sequences per target from firstSequence) to every target, several batches in flight per target,
// until SIGKILLed. Report lines (child-report.ts): "S target from to" about to publish; "P target from to" it resolved.
import { Broker } from '../../src/broker/index.js';
import { TARGETS, batchOf } from './producer-batches.js';
import { report, reportReady } from './child-report.js';

const [dataDir, firstSequence] = process.argv.slice(2);
const LANES_PER_TARGET = 3;
const broker = await Broker.open({ dataDir, fsync: 'always' });
const next = new Map<string, number>(TARGETS.map((t) => [t, Number(firstSequence)]));

async function lane(target: string, lane: number): Promise<void> {
  for (let b = lane; ; b += LANES_PER_TARGET) {
    const from = next.get(target)!;
    const to = from + (b % 5); // batches of 1 to 5 messages
    next.set(target, to + 1);
    report(`S ${target} ${from} ${to}`);
    await broker.publish(target, batchOf(target, from, to));
    report(`P ${target} ${from} ${to}`);
  }
}

reportReady();
await Promise.all(TARGETS.flatMap((t) => Array.from({ length: LANES_PER_TARGET }, (_, l) => lane(t, l))));
