// A remote consumer closing while its handler runs: a delivery already on its way is run with
// ackMode 'auto' (acked by the server before it is sent), so nothing is lost, and a manual one is
// released (back in the queue uncounted), not failed at UNSUBSCRIBE (a counted delivery that reached
// no handler). A message
// the server holds for a credit the closing client no longer grants was never acked: it stays queued.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker, type QueueStats } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';
import { sleep, waitFor } from '../broker/topics-helpers.js';

describe('a remote consumer closing with a delivery on its way', () => {
  let broker: Broker;
  let server: NativeServer;
  let client: RemoteWharf;
  beforeEach(async () => {
    broker = await Broker.open({ inMemory: true });
    server = await startNativeServer(broker, { port: 0 });
    client = await connect(`wharf://127.0.0.1:${server.address().port}`);
  });
  afterEach(async () => {
    await client.close();
    await server.close();
    await broker.close();
  });

  /** Starts a consumer whose handler holds 'a' until released, closes it, and publishes 'b' meanwhile. */
  async function closeWhileHandling(queue: string, ackMode: 'auto' | 'manual'): Promise<string[]> {
    const handled: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const consumer = await client.consume(queue, { ackMode, concurrency: 1, prefetch: 2 }, async (m) => {
      handled.push(m.payload as string);
      if (m.payload === 'a') await gate;
    });
    await client.publish(queue, { payload: 'a' });
    for (let i = 0; i < 200 && handled.length === 0; i++) await sleep(10);
    expect(handled).toEqual(['a']);
    const closing = consumer.close(); // waits for 'a'
    await broker.publish(queue, { payload: 'b' }); // sent on the spare credit
    await sleep(200);
    release();
    await closing;
    await sleep(100);
    return handled;
  }

  it("ackMode 'auto': the delivery is handled, or still in the queue, never lost", async () => {
    await broker.createQueue('q');
    const handled = await closeWhileHandling('q', 'auto');
    const s = (await broker.stats('q')) as QueueStats;
    expect(handled.includes('b') || s.depth + s.inFlight === 1).toBe(true);
  });

  it("ackMode 'auto': a message the server held for a credit when close() began stays in the queue", async () => {
    await broker.createQueue('q');
    await broker.publish('q', [{ payload: 'a' }, { payload: 'b' }, { payload: 'c' }]);
    const handled: string[] = [];
    const consumer = await client.consume('q', { ackMode: 'auto', concurrency: 1, prefetch: 2 }, async (m) => {
      handled.push(m.payload as string);
      await sleep(100);
    });
    await waitFor(() => handled.length > 0, "'a' handed");
    // 'a' runs, 'b' waits here for the handler: once they settle, the server takes 'c' and holds it
    // for a credit (close() grants none).
    await consumer.close();
    await waitFor(async () => ((await broker.stats('q')) as QueueStats).inFlight === 0, "'c' given back");
    expect(handled).toEqual(['a', 'b']);
    const left = await broker.receive('q', { max: 10, waitMs: 0 });
    expect(left.map((m) => [m.payload, m.deliveryCount])).toEqual([['c', 1]]);
  });

  it('manual: the delivery is not dead-lettered without reaching a handler', async () => {
    await broker.createQueue('dlq');
    await broker.createQueue('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
    const handled = await closeWhileHandling('q', 'manual');
    const dlq = (await broker.stats('dlq')) as QueueStats;
    expect(handled.includes('b') || dlq.depth === 0).toBe(true);
  });
});
