// The settled progress of a fetched batch is committed before its end: before a failing message
// waits for its retry (the messages before it in the batch), and every progressCommitIntervalMs in
// a batch of handlers that take long. So a restart redelivers from the poison message, and lag
// counts only what is left.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { Subscription, TopicMessage, TopicStats } from '../../src/broker/index.js';
import { BROKER_DEFAULTS } from '../../src/broker/context.js';
import { ManualClock } from '../../src/common/index.js';
import { subscribeGroup, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A broker whose topic t holds messages with payloads 0..9 in its one partition (one fetched batch). */
async function setup(options: { clock?: ManualClock } = {}): Promise<Broker> {
  const b = await Broker.open({ inMemory: true, ...options });
  cleanups.push(() => b.close());
  await b.createTopic('t', { partitions: 1 });
  await b.publish(
    't',
    Array.from({ length: 10 }, (_, i) => ({ payload: i })),
  );
  return b;
}

const subscribe = (
  b: Broker,
  options: object,
  handler: (m: TopicMessage) => Promise<void> | void,
): Promise<Subscription> => subscribeGroup(b, 't', options, handler, cleanups);

async function group(b: Broker): Promise<{ committed: number; lag: number }> {
  const g = ((await b.stats('t')) as TopicStats).groups.g;
  return { committed: g.partitions[0].committed, lag: g.lag };
}

describe('topics: progress committed within a batch', () => {
  it('while a message of the batch is retried, the messages before it are committed', async () => {
    const b = await setup();
    const done: number[] = [];
    let attempts = 0;
    const sub = await subscribe(b, {}, (m) => {
      if (m.payload === 5) {
        attempts++;
        throw new Error('poison');
      }
      done.push(m.payload as number);
    });
    await waitFor(async () => (await group(b)).committed === 5, 'the progress before the poison message', 5_000);
    expect(done).toEqual([0, 1, 2, 3, 4]);
    expect((await group(b)).lag).toBe(5);
    expect(attempts).toBeGreaterThan(0);
    await sub.close();
    // A new member starts at the poison message, not at the batch's start.
    const again: number[] = [];
    await subscribe(b, {}, (m) => void again.push(m.payload as number));
    await waitFor(() => again.length === 5, 'the rest of the partition');
    expect(again).toEqual([5, 6, 7, 8, 9]);
  });

  it('with maxInFlight > 1, the settled run before a retried message is committed once nothing below it is in flight', async () => {
    const b = await setup();
    let release4!: () => void;
    const held = new Promise<void>((r) => (release4 = r));
    cleanups.push(() => release4());
    let attempts = 0;
    await subscribe(b, { maxInFlight: 4 }, async (m) => {
      if (m.payload === 4) await held;
      if (m.payload === 5) {
        attempts++;
        throw new Error('poison');
      }
    });
    // Message 5 fails while message 4 is still in flight: only 0..3 have settled.
    await waitFor(() => attempts >= 2, 'message 5 failed');
    expect((await group(b)).committed).toBe(0);
    release4();
    // Its next failure finds every message below it settled.
    await waitFor(async () => (await group(b)).committed === 5, 'the settled run up to message 5', 5_000);
  });

  it('a batch of handlers that take long commits its progress every progressCommitIntervalMs', async () => {
    const clock = new ManualClock();
    const b = await setup({ clock });
    let release3!: () => void;
    const held = new Promise<void>((r) => (release3 = r));
    cleanups.push(() => release3());
    await subscribe(b, {}, async (m) => {
      clock.advance(BROKER_DEFAULTS.progressCommitIntervalMs); // each message takes the interval
      if (m.payload === 3) await held;
    });
    // Messages 0..2 settled, message 3 still runs: the batch has not ended, its progress is committed.
    await waitFor(async () => (await group(b)).committed === 3, 'the progress of the batch so far', 5_000);
    release3();
    await waitFor(async () => (await group(b)).committed === 10, 'the whole batch');
  });

  it('with maxInFlight > 1, a batch of handlers that take long commits up to its lowest unsettled message every progressCommitIntervalMs', async () => {
    const clock = new ManualClock();
    const b = await setup({ clock });
    let release3!: () => void;
    const held = new Promise<void>((r) => (release3 = r));
    const settled: number[] = [];
    await subscribe(b, { maxInFlight: 4 }, async (m) => {
      clock.advance(BROKER_DEFAULTS.progressCommitIntervalMs); // each message takes the interval
      if (m.payload === 3) await held;
      settled.push(m.payload as number);
    });
    cleanups.push(() => release3()); // before the subscription closes: its revoke waits for message 3
    // Every message but 3 has settled; 3 still runs, so the batch has not ended. What is committed
    // is its lowest unsettled offset: 4..9 stay uncommitted behind it.
    await waitFor(() => settled.length === 9, 'every message but 3 settled');
    await waitFor(async () => (await group(b)).committed === 3, 'the progress below message 3', 5_000);
    expect((await group(b)).lag).toBe(7);
    release3();
    await waitFor(async () => (await group(b)).committed === 10, 'the whole batch');
  });
});
