// maxInFlight: up to N messages per partition are handed to the handler before the oldest settles,
// in offset order; the commit covers only the contiguous settled prefix.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { codeOf, waitFor } from './topics-helpers.js';

let broker: Broker | null = null;
afterEach(async () => {
  await broker?.close();
  broker = null;
});

describe('topics: maxInFlight', () => {
  it('hands out up to maxInFlight messages in order and commits only the settled prefix', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('t', { partitions: 1 });
    await broker.publish(
      't',
      Array.from({ length: 10 }, (_, i) => ({ payload: i })),
    );
    const pending = new Map<number, () => void>();
    const order: number[] = [];
    const sub = await broker.subscribe('t', { group: 'g', from: 'earliest', maxInFlight: 4 }, (m) => {
      order.push(m.offset);
      return new Promise<void>((r) => pending.set(m.offset, r));
    });
    await waitFor(() => order.length === 4, 'four messages in flight');
    await new Promise((r) => setTimeout(r, 30));
    expect(order).toEqual([0, 1, 2, 3]); // the window is full: nothing more until one settles
    pending.get(1)!(); // out of order: offset 0 still holds the commit and the window
    await new Promise((r) => setTimeout(r, 30));
    expect(order.length).toBe(5);
    pending.get(0)!();
    await waitFor(() => order.length === 6, 'the window refills');
    for (const f of pending.values()) f();
    await waitFor(() => order.length === 10, 'all ten');
    for (const o of [6, 7, 8, 9]) await waitFor(() => pending.has(o), `offset ${o}`);
    for (const f of pending.values()) f();
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await sub.close();
    // Everything settled was committed: a new member of the group gets nothing again.
    const again: number[] = [];
    const sub2 = await broker.subscribe('t', { group: 'g', from: 'earliest' }, (m) => void again.push(m.offset));
    await new Promise((r) => setTimeout(r, 50));
    expect(again).toEqual([]);
    await sub2.close();
  });

  it('rejects a maxInFlight outside 1..10000', async () => {
    broker = await Broker.open({ inMemory: true });
    await broker.createTopic('t', { partitions: 1 });
    expect(await codeOf(broker.subscribe('t', { maxInFlight: 0 }, () => undefined))).toBe('INVALID_ARGUMENT');
  });
});
