// A transaction commits a partition's offsets in order: with maxInFlight > 1, tx.commitOffset(m)
// fails with CONFLICT while a message of the same grant below m is still unsettled (in flight, or
// waiting for a retry), so the next owner after a crash, a clean leave or a revoke gets that message.
// And a commit the subscription queued earlier never lands over a transaction's later one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { Subscription, TopicMessage, TopicStats } from '../../src/broker/index.js';
import { BROKER_DEFAULTS } from '../../src/broker/context.js';
import { ManualClock, WharfError } from '../../src/common/index.js';
import { simulateMemberCrash } from '../../src/broker/topics/member-crash.js';
import { OffsetStore } from '../../src/broker/topics/offset-store.js';
import { sleep, subscribeGroup, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SAFE_SESSION = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000 };
const SHORT_SESSION = { sessionTimeoutMs: 300, heartbeatIntervalMs: 50 };

/** A broker with input topic `in` holding messages 0 and 1 in its one partition, and output topic `out`. */
async function setup(): Promise<Broker> {
  const b = await Broker.open({ inMemory: true });
  cleanups.push(() => b.close());
  await b.createTopic('in', { partitions: 1 });
  await b.createTopic('out', { partitions: 1 });
  await b.publish('in', [{ payload: 0 }, { payload: 1 }]);
  return b;
}

const subscribe = (
  b: Broker,
  options: object,
  handler: (m: TopicMessage) => Promise<void> | void,
): Promise<Subscription> => subscribeGroup(b, 'in', options, handler, cleanups);

async function committed(b: Broker): Promise<number> {
  return ((await b.stats('in')) as TopicStats).groups.g.partitions[0].committed;
}

async function outputs(b: Broker): Promise<number> {
  return ((await b.stats('out')) as TopicStats).partitions[0].endOffset;
}

/**
 * The read-process-write step: one output for the input and its offset committed under its grant.
 * A refused transaction is kept in `refused` and thrown, so the message is retried.
 */
function processOnce(b: Broker, refused: WharfError[]) {
  return async (m: TopicMessage): Promise<void> => {
    try {
      await b.transaction(async (tx) => {
        await tx.publish('out', { payload: `out-${String(m.payload)}` });
        await tx.commitOffset(m);
      });
    } catch (err) {
      refused.push(err as WharfError);
      throw err;
    }
  };
}

/** What a new member of the group receives from the partition (messages are payloads 0 and 1). */
async function nextOwnerReceives(b: Broker): Promise<unknown[]> {
  const seen: unknown[] = [];
  await subscribe(b, SAFE_SESSION, (m) => void seen.push(m.payload));
  await waitFor(() => seen.length >= 2, 'the next owner gets both messages', 5_000);
  return seen;
}

describe('a transactional offset commit passes no unsettled message of its grant', () => {
  it('while an earlier message is in flight, a later one’s commit is CONFLICT; after a crash the next owner gets both', async () => {
    const b = await setup();
    let release0!: () => void;
    const slow0 = new Promise<void>((r) => (release0 = r));
    const refused: WharfError[] = [];
    const process = processOnce(b, refused);
    const a = await subscribe(b, { maxInFlight: 2, ...SHORT_SESSION }, async (m) => {
      if (m.payload === 0) await slow0; // e.g. a slow external call
      await process(m);
    });
    cleanups.push(() => release0());
    await waitFor(() => refused.length > 0, 'message 1’s transaction refused', 5_000);
    expect(refused[0].code).toBe('CONFLICT');
    expect(refused[0].message).toMatch(/^offset 0 of partition 0 of topic "in" is still being handled/);
    expect(refused[0].message).toMatch(/commits a partition's offsets in order/);
    expect(await committed(b)).toBe(0);
    expect(await outputs(b)).toBe(0);
    simulateMemberCrash(a); // the process dies before message 0 finished
    expect(await nextOwnerReceives(b)).toEqual([0, 1]);
  });

  it('while an earlier message waits for its retry, a later one’s commit is CONFLICT; after a clean leave the next owner gets both', async () => {
    const b = await setup();
    let failing = true;
    const refused: WharfError[] = [];
    const process = processOnce(b, refused);
    const a = await subscribe(b, { maxInFlight: 2, ...SAFE_SESSION }, async (m) => {
      if (m.payload === 0 && failing) throw new Error('downstream unavailable'); // retried with backoff
      await process(m);
    });
    await waitFor(() => refused.length > 0, 'message 1’s transaction refused', 5_000);
    expect(refused[0].code).toBe('CONFLICT');
    await a.close(); // a clean leave while message 0 waits for its retry
    expect(await committed(b)).toBe(0);
    expect(await outputs(b)).toBe(0);
    failing = false;
    expect(await nextOwnerReceives(b)).toEqual([0, 1]);
  });

  it('a transaction run while its partition is revoked passes no message the revoke gave up', async () => {
    const b = await setup();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let attempts0 = 0;
    let waiting1 = false;
    const refused: WharfError[] = [];
    const process = processOnce(b, refused);
    const a = await subscribe(b, { maxInFlight: 2, ...SAFE_SESSION }, async (m) => {
      if (m.payload === 0) {
        attempts0++;
        throw new Error('downstream unavailable');
      }
      waiting1 = true;
      await gate; // message 1's handler is still at work when the revoke starts
      await process(m);
    });
    cleanups.push(() => open());
    await waitFor(() => attempts0 > 0 && waiting1, 'message 0 failed and message 1 is being handled', 5_000);
    // The revoke gives up message 0's retry and waits for message 1's handler, whose grant is
    // still current until it returns: its transaction must not commit past message 0.
    let closed = false;
    const closing = a.close().then(() => (closed = true));
    await sleep(50);
    expect(closed).toBe(false);
    open();
    await closing;
    expect(refused.map((e) => e.code)).toEqual(['CONFLICT']);
    expect(refused[0].message).toMatch(/^offset 0 of partition 0 /);
    expect(await committed(b)).toBe(0);
    expect(await outputs(b)).toBe(0);
    expect(await nextOwnerReceives(b)).toEqual([0, 1]);
  });

  it('a commit the subscription queued before a transaction’s does not land after it and move the offset back', async () => {
    const clock = new ManualClock();
    const b = await Broker.open({ inMemory: true, clock });
    cleanups.push(() => b.close());
    await b.createTopic('in', { partitions: 1 });
    await b.createTopic('out', { partitions: 1 });
    // While the gate is closed, offset writes wait behind it in the order they came: a slow disk.
    let gate: Promise<void> = Promise.resolve();
    let openGate = (): void => undefined;
    const write = OffsetStore.prototype.commit;
    const writes = vi.spyOn(OffsetStore.prototype, 'commit').mockImplementation(function (this: OffsetStore, ...args) {
      return gate.then(() => write.apply(this, args));
    });
    cleanups.push(() => writes.mockRestore());
    let release2!: () => void;
    const held2 = new Promise<void>((r) => (release2 = r));
    let committed2 = false;
    const handled: unknown[] = [];
    const a = await subscribe(b, SAFE_SESSION, async (m) => {
      handled.push(m.payload);
      if (m.payload === 0) clock.advance(BROKER_DEFAULTS.progressCommitIntervalMs); // commits its progress
      if (m.payload !== 2) return;
      await b.transaction(async (tx) => {
        await tx.publish('out', { payload: 'out-2' });
        await tx.commitOffset(m);
      });
      committed2 = true;
      await held2; // message 2 is still being handled: nothing commits past it meanwhile
    });
    cleanups.push(() => release2());
    await waitFor(async () => (await committed(b)) === 0, 'the start position committed');
    gate = new Promise<void>((r) => (openGate = r));
    const before = writes.mock.calls.length;
    // One batch: after message 0 the progress commit (offset 1) waits at the gate; at the batch end
    // the commit of offset 2 is queued behind it.
    await b.publish('in', [{ payload: 0 }, { payload: 1 }]);
    await waitFor(() => handled.length === 2 && writes.mock.calls.length === before + 1, 'the first batch');
    // Message 2's transaction commits offset 3; its write waits behind the subscription's first one.
    await b.publish('in', { payload: 2 });
    await waitFor(() => writes.mock.calls.length === before + 2, 'the transaction’s offset write');
    openGate();
    await waitFor(() => committed2, 'the transaction committed');
    await sleep(50); // the commit queued at the batch end, had it been written
    expect(await committed(b)).toBe(3);
    // The member dies while it still handles message 2: its next owner starts after it.
    simulateMemberCrash(a);
    clock.advance(SAFE_SESSION.sessionTimeoutMs);
    const next: unknown[] = [];
    await subscribe(b, SAFE_SESSION, (m) => void next.push(m.payload));
    await b.publish('in', { payload: 3 });
    await waitFor(() => next.length > 0, 'the next owner gets a message');
    expect(next).toEqual([3]);
    expect(await outputs(b)).toBe(1);
  });
});
