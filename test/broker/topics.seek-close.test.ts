// seek() and close() of a reader without a group: a close() that comes while a seek() waits for the
// old fetchers leaves nothing delivering once close() has resolved.
import { afterEach, expect, it } from 'vitest';
import { Broker, type TopicMessage } from '../../src/broker/index.js';
import { sleep, waitFor } from './topics-helpers.js';

let broker: Broker | null = null;
afterEach(async () => {
  await broker?.close();
  broker = null;
});

it('a seek() racing close() starts no fetcher after close(): nothing is handled once close() resolved', async () => {
  broker = await Broker.open({ inMemory: true });
  await broker.createTopic('t', { partitions: 2 });
  for (let i = 0; i < 10; i++) await broker.publish('t', { key: `k${i}`, payload: i });
  const handled: number[] = [];
  const sub = await broker.subscribe('t', { from: 'earliest' }, async (m: TopicMessage) => {
    await sleep(1);
    handled.push(m.payload as number);
  });
  await waitFor(() => handled.length === 10, 'the first pass');
  const seeking = sub.seek('earliest');
  await sub.close();
  await seeking;
  const atClose = handled.length;
  for (let i = 10; i < 20; i++) await broker.publish('t', { key: `k${i}`, payload: i });
  await sleep(200);
  expect(sub.assignments()).toEqual([]);
  expect(handled.length).toBe(atClose);
});
