// Child process of transaction.dedup.test.ts: publishes with dedupIds to a topic and a queue until SIGKILLed.
// Report lines (child-report.ts): "READY"; "S n" about to publish n; "P n partition offset" the topic publish of n resolved.
import { Broker } from '../../src/broker/index.js';
import { report, reportReady } from './child-report.js';

const [dataDir] = process.argv.slice(2);
const broker = await Broker.open({ dataDir, fsync: 'always' });
reportReady();
for (let n = 0; ; n++) {
  report(`S ${n}`);
  const [t] = await Promise.all([
    broker.publish('t', { key: `k${n}`, dedupId: `d${n}`, payload: n }),
    broker.publish('q', { dedupId: `d${n}`, payload: n }),
  ]);
  report(`P ${n} ${t.partition} ${t.offset}`);
}
