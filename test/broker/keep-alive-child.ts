// Child of keep-alive.test.ts: opens an in-memory broker, starts a consumer of an empty queue (or a
// subscription to an empty topic) and nothing else that holds the process open but an unref'd timer
// that closes the consumer (or the broker, or deletes the subscription's topic) after CLOSE_AFTER_MS. Prints "open" then "closed".
import { Broker } from '../../src/broker/index.js';

const CLOSE_AFTER_MS = 400;
const [kind, closeWhat] = process.argv.slice(2);
const broker = await Broker.open({ inMemory: true });
let flow: { close(): Promise<void> };
if (kind === 'subscription') {
  await broker.createTopic('t');
  flow = await broker.subscribe('t', { group: 'g' }, () => undefined);
} else {
  await broker.createQueue('q');
  flow = await broker.consume('q', {}, () => undefined);
}
process.stdout.write('open\n');
setTimeout(() => {
  const closing =
    closeWhat === 'broker' ? broker.close() : closeWhat === 'delete' ? broker.deleteTopic('t') : flow.close();
  void closing.then(() => process.stdout.write('closed\n'));
}, CLOSE_AFTER_MS).unref();
