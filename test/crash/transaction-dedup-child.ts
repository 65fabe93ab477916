// Child process of transaction.dedup.test.ts: publishes with dedupIds to a topic and a queue until SIGKILLed.
// Stdout: "S n" about to publish n; "P n partition offset" the topic publish of n resolved.
import { Broker } from '../../src/broker/index.js';

const [dataDir] = process.argv.slice(2);
const out = (line: string): void => void process.stdout.write(line + '\n');
const broker = await Broker.open({ dataDir, fsync: 'always' });
out('READY');
for (let n = 0; ; n++) {
  out(`S ${n}`);
  const [t] = await Promise.all([broker.publish('t', { key: `k${n}`, dedupId: `d${n}`, payload: n }), broker.publish('q', { dedupId: `d${n}`, payload: n })]);
  out(`P ${n} ${t.partition} ${t.offset}`);
}
