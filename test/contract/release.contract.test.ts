// A reader that turns a delivery away because it is leaving (its handler throws WharfError
// RELEASED, or the delivery reaches a subscription whose close() has begun) is not failing: the
// message is not counted in errorRate nor committed or acked, and it comes again with its
// deliveryCount unchanged, to this reader or the next. Any other throw is a handler failure, counted
// as before. Embedded and remote alike.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WharfError } from '../../src/common/index.js';
import type { QueueMessage, QueueStats, TopicMessage, TopicStats } from '../../src/broker/index.js';
import { factories, waitFor, type Target } from './factories.js';

describe.each(factories)('releasing a delivery (%s)', (_name, make) => {
  let t: Target;
  beforeEach(async () => {
    t = await make();
  });
  afterEach(async () => {
    await t.close();
  });

  const topicStats = async (name: string): Promise<TopicStats> => (await t.wharf.stats(name)) as TopicStats;
  const queueStats = async (name: string): Promise<QueueStats> => (await t.wharf.stats(name)) as QueueStats;

  /** Subscribes group 'g' to `topic` with a handler that throws `thrown` at its first call; returns each call's deliveryCount. */
  async function topicDeliveries(topic: string, thrown: Error): Promise<number[]> {
    await t.wharf.createTopic(topic, { partitions: 1 });
    await t.wharf.publish(topic, { payload: 1 });
    const counts: number[] = [];
    const sub = await t.wharf.subscribe(topic, { group: 'g', from: 'earliest' }, (m: TopicMessage) => {
      counts.push(m.deliveryCount);
      if (counts.length === 1) throw thrown;
    });
    await waitFor(() => counts.length === 2);
    await sub.close();
    return counts;
  }

  it('a topic handler that throws RELEASED is not counted: the message comes again with the same deliveryCount', async () => {
    expect(await topicDeliveries('released', new WharfError('RELEASED', 'leaving'))).toEqual([1, 1]);
    expect((await topicStats('released')).errorRate).toBe(0);
    expect(await topicDeliveries('failed', new Error('boom'))).toEqual([1, 2]);
    expect((await topicStats('failed')).errorRate).toBeGreaterThan(0);
  });

  /** Consumes `queue` with a handler that throws `thrown` at its first call; returns each call's deliveryCount. */
  async function queueDeliveries(queue: string, thrown: Error): Promise<number[]> {
    await t.wharf.createQueue(queue, { retry: { initialDelayMs: 10, jitter: 0 } });
    await t.wharf.publish(queue, { payload: 1 });
    const counts: number[] = [];
    const c = await t.wharf.consume(queue, { concurrency: 1 }, (m: QueueMessage) => {
      counts.push(m.deliveryCount);
      if (counts.length === 1) throw thrown;
    });
    await waitFor(() => counts.length === 2);
    await c.close();
    return counts;
  }

  it('a queue handler that throws RELEASED hands the message back uncounted; any other throw nacks it, counted', async () => {
    expect(await queueDeliveries('released', new WharfError('RELEASED', 'leaving'))).toEqual([1, 1]);
    const released = await queueStats('released');
    expect([released.errorRate, released.nackRate]).toEqual([0, 0]);
    expect(await queueDeliveries('failed', new Error('boom'))).toEqual([1, 2]);
    expect((await queueStats('failed')).errorRate).toBeGreaterThan(0);
  });

  it('a message published while close() waits for a running handler reaches no handler, is not committed nor counted, and goes to the next member', async () => {
    await t.wharf.createTopic('t', { partitions: 2 });
    const seen: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const sub = await t.wharf.subscribe('t', { group: 'g', from: 'earliest' }, async (m: TopicMessage) => {
      seen.push(m.payload as string);
      if (m.payload === 'first') await held;
    });
    await t.wharf.publish('t', { payload: 'first', partition: 0 });
    await waitFor(() => seen.length === 1);
    const closed = sub.close(); // waits for 'first'
    await t.wharf.publish('t', { payload: 'second', partition: 1 });
    await new Promise((r) => setTimeout(r, 100)); // a remote reader's flow is still open: 'second' may come meanwhile
    release();
    await closed;
    expect(seen).toEqual(['first']);
    const s = await topicStats('t');
    expect(s.errorRate).toBe(0);
    expect(s.groups.g.partitions.map((p) => p.committed)).toEqual([1, 0]);
    const next: Array<[unknown, number]> = [];
    const again = await t.wharf.subscribe('t', { group: 'g' }, (m: TopicMessage) => {
      next.push([m.payload, m.deliveryCount]);
    });
    await waitFor(() => next.length === 1);
    await again.close();
    expect(next).toEqual([['second', 1]]);
  });
});
