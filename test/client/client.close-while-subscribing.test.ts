// A remote subscribe or consume whose SUBSCRIBED comes once close() has begun: close() did not know
// of the flow, so it is unsubscribed when it starts, its caller gets CLOSED (as a call made after
// close() does), none of its deliveries reaches a handler, and what the server sent it is delivered
// again: a group commits nothing of it, a queue's message goes back for another consumer.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { connect } from '../../src/client/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';

describe('a remote client closed while a subscribe or consume is on its way', () => {
  let broker: Broker;
  let server: NativeServer;
  let url: string;
  beforeEach(async () => {
    broker = await Broker.open({ inMemory: true });
    server = await startNativeServer(broker, { port: 0 });
    url = `wharf://127.0.0.1:${server.address().port}`;
  });
  afterEach(async () => {
    await server.close();
    await broker.close();
  });

  it('subscribe rejects with CLOSED, runs no handler, and its group commits nothing', async () => {
    await broker.createTopic('t', { partitions: 1 });
    await broker.publish('t', { payload: 'first' });
    const client = await connect(url);
    let handled = 0;
    const starting = client.subscribe('t', { group: 'g', from: 'earliest' }, () => void handled++);
    const closing = client.close();
    await expect(starting).rejects.toMatchObject({ code: 'CLOSED' });
    await closing;
    expect(handled).toBe(0);

    const next = await connect(url);
    const seen: unknown[] = [];
    const sub = await next.subscribe('t', { group: 'g', from: 'earliest' }, (m) => void seen.push(m.payload));
    await expect.poll(() => seen, { timeout: 5_000 }).toEqual(['first']);
    await sub.close();
    await next.close();
  });

  it('consume rejects with CLOSED, runs no handler, and its message goes back to the queue', async () => {
    await broker.createQueue('q');
    await broker.publish('q', { payload: 'first' });
    const client = await connect(url);
    let handled = 0;
    const starting = client.consume('q', {}, () => void handled++);
    const closing = client.close();
    await expect(starting).rejects.toMatchObject({ code: 'CLOSED' });
    await closing;
    expect(handled).toBe(0);

    const next = await connect(url);
    const back = await next.receive('q', { waitMs: 2_000 });
    expect(back.map((m) => m.payload)).toEqual(['first']);
    await back[0].ack();
    await next.close();
  });
});
