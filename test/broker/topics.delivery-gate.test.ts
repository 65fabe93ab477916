// An auto-ack subscription opened with a DeliveryGate (Broker.subscribeStored; the native server
// passes its flow's credits) commits and delivers only what the gate admits, waits for room without
// committing further, and gives back what it admitted but could not deliver (an aborted fetcher).
// So a message its handler could not take yet is never committed past: the next member gets it.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { DeliveryGate, StoredTopicDelivery, TopicStats } from '../../src/broker/index.js';
import type { TopicSubscription } from '../../src/broker/topics/subscription.js';
import { sleep, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A gate with `room` to hand out; grant() adds room and wakes the fetchers waiting for it, as CREDIT does. */
class TestGate implements DeliveryGate {
  released = 0;
  private readonly waiters = new Set<{ wake(): void }>();
  constructor(public room: number) {}
  admit(max: number): number {
    const n = Math.min(max, this.room);
    this.room -= n;
    return n;
  }
  release(count: number): void {
    this.released += count;
    this.room += count;
  }
  addWaiter(w: { wake(): void }): void {
    this.waiters.add(w);
  }
  removeWaiter(w: { wake(): void }): void {
    this.waiters.delete(w);
  }
  grant(n: number): void {
    this.room += n;
    for (const w of [...this.waiters]) w.wake();
  }
  get waiting(): number {
    return this.waiters.size;
  }
}

/** A broker whose topic t holds messages 0..9 in its one partition. */
async function setup(): Promise<Broker> {
  const b = await Broker.open({ inMemory: true });
  cleanups.push(() => b.close());
  await b.createTopic('t', { partitions: 1 });
  await b.publish(
    't',
    Array.from({ length: 10 }, (_, i) => ({ payload: i })),
  );
  return b;
}

const committed = async (b: Broker): Promise<number> =>
  ((await b.stats('t')) as TopicStats).groups.g.partitions[0].committed;

const options = { group: 'g', from: 'earliest', ackMode: 'auto' } as const;

describe('topics: an auto-ack subscription with a DeliveryGate', () => {
  it('commits and delivers only what the gate admits, the rest once it admits more', async () => {
    const b = await setup();
    const gate = new TestGate(3);
    const seen: number[] = [];
    const sub = await b.subscribeStored('t', options, (m: StoredTopicDelivery) => void seen.push(m.offset), gate);
    cleanups.push(() => sub.close());
    await waitFor(() => gate.waiting === 1, 'the fetcher waiting for room');
    expect(seen).toEqual([0, 1, 2]);
    expect(await committed(b)).toBe(3);
    gate.grant(4);
    await waitFor(() => seen.length === 7, 'the next four');
    expect(await committed(b)).toBe(7);
    expect(gate.room).toBe(0);
  });

  it('closed while waiting for room, commits nothing more: the next member starts after what was admitted', async () => {
    const b = await setup();
    const gate = new TestGate(2);
    const sub = await b.subscribeStored('t', options, () => undefined, gate);
    await waitFor(() => gate.waiting === 1, 'the fetcher waiting for room');
    await sub.close();
    expect(gate.waiting).toBe(0);
    expect(await committed(b)).toBe(2);
    const next: number[] = [];
    const again = await b.subscribe('t', options, (m) => void next.push(m.offset));
    cleanups.push(() => again.close());
    await waitFor(() => next.length === 8, 'the rest');
    expect(next).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('an aborted fetcher gives back what it admitted and did not deliver', async () => {
    const b = await setup();
    const gate = new TestGate(5);
    const seen: number[] = [];
    let sub: TopicSubscription | null = null;
    sub = (await b.subscribeStored(
      't',
      options,
      (m: StoredTopicDelivery) => {
        seen.push(m.offset);
        if (m.offset === 1) sub!.simulateCrash(); // the fetcher aborts after this delivery
      },
      gate,
    )) as unknown as TopicSubscription;
    cleanups.push(() => sub!.close());
    await waitFor(() => gate.released > 0, 'the admission given back');
    await sleep(20);
    expect(seen).toEqual([0, 1]);
    expect(gate.released).toBe(3);
    expect(gate.room).toBe(3);
  });

  it('is refused for a manual subscription: only auto-ack subscriptions commit before delivery', async () => {
    const b = await setup();
    await expect(
      b.subscribeStored('t', { group: 'g', from: 'earliest' }, () => undefined, new TestGate(1)),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});
