// A priority queue: urgent tickets jump the line. Run: npx tsx examples/priority/main.ts
import { Broker } from '../../src/broker/index.js';
import { DEMO_TICKETS, runPriorityDemo } from './tickets.js';

const broker = await Broker.open({ inMemory: true });
await runPriorityDemo(broker, DEMO_TICKETS, (l) => console.log(l));
await broker.close();
