// Child of bench/queues.ts: opens a data dir holding a large queue backlog in a fresh process, so
// the RSS it reports is what the backlog costs, not what publishing it left behind.
import { Broker } from '../../src/broker/index.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: queue-backlog-rss.ts <dataDir>');
const rssMb = (): number => Math.round(process.memoryUsage().rss / 1048576);
const broker = await Broker.open({ dataDir: dir, fsync: 'never' });
global.gc?.();
const afterOpen = rssMb();
const got = await broker.receive('backlog', { max: 100 });
for (const m of got) await m.ack();
const s = await broker.stats('backlog');
global.gc?.();
console.log(
  JSON.stringify({
    rssMbAfterReopen: afterOpen,
    rssMbAfterReceive: rssMb(),
    depth: 'depth' in s ? s.depth : null,
    heapUsedMb: Math.round(process.memoryUsage().heapUsed / 1048576),
  }),
);
await broker.close();
