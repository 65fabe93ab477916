// Competing consumers on one queue. Run: npx tsx examples/competing-consumers/main.ts
import { Broker } from '../../src/broker/index.js';
import { runCompetingConsumers } from './workers.js';

const broker = await Broker.open({ inMemory: true });
const result = await runCompetingConsumers(broker, { jobs: 30, workers: 3, failOnce: [7], log: (l) => console.log(l) });
console.log(
  `\n${result.completedBy.size} jobs done, each once; per worker: ${JSON.stringify(result.perWorker)}; retried: ${result.retries}`,
);
await broker.close();
