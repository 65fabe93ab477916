// tx.commitOffset(message) is fenced by the grant the message was delivered under, also when the
// partition comes back to the same member (KIP-447's bypass of a fence by member id alone): after a
// revoke that timed out, and after a session expiry and rejoin. And a fenced commit holds its
// partition only until its offset is written, not while its transaction's other outputs wait.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { Subscription, TopicMessage, TopicStats } from '../../src/broker/index.js';
import { GroupCoordinator } from '../../src/broker/topics/group-coordinator.js';
import { codeOf, sleep, subscribeGroup, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SAFE_SESSION = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000 };
const SHORT_SESSION = { sessionTimeoutMs: 300, heartbeatIntervalMs: 50 };

async function setup(partitions: number) {
  const b = await Broker.open({ inMemory: true });
  cleanups.push(() => b.close());
  await b.createTopic('orders', { partitions });
  await b.createQueue('out');
  return b;
}

const subscribe = (
  b: Broker,
  options: object,
  handler: (m: TopicMessage) => Promise<void> | void,
): Promise<Subscription> => subscribeGroup(b, 'orders', options, handler, cleanups);

async function committed(b: Broker, partition: number): Promise<number> {
  return ((await b.stats('orders')) as TopicStats).groups.g.partitions[partition].committed;
}

async function outDepth(b: Broker): Promise<number> {
  const s = await b.stats('out');
  return s.kind === 'queue' ? s.depth : -1;
}

/** The read-process-write step: one output for the input, and its offset committed under its grant. */
function processOnce(b: Broker, m: TopicMessage): Promise<void> {
  return b.transaction(async (tx) => {
    await tx.publish('out', { payload: `from ${m.partition}:${m.offset}` });
    await tx.commitOffset(m);
  });
}

describe('transactional offset commits are fenced per grant', () => {
  it('after a revoke that timed out, the partition back with its member: the old message cannot commit', async () => {
    const b = await setup(2);
    await b.publish('orders', [
      { partition: 0, payload: 0 },
      { partition: 1, payload: 1 },
    ]);
    // a's handler holds each partition's first message for longer than a's session timeout.
    const held: TopicMessage[] = [];
    const releases: Array<() => void> = [];
    const a = await subscribe(b, SHORT_SESSION, (m) => {
      if (m.deliveryCount > 1 || held.some((h) => h.partition === m.partition)) return;
      held.push(m);
      return new Promise<void>((r) => releases.push(r));
    });
    await waitFor(() => held.length === 2, 'a holds both partitions');
    // c joins: a's revoke of the partition that moves times out, and c takes it over ...
    const c = await subscribe(b, SAFE_SESSION, () => undefined);
    const [moved] = c.assignments();
    await waitFor(async () => (await committed(b, moved)) === 1, 'c consumed the partition it took');
    // ... and leaves: the partition is a's again, under a new grant, with a fresh fetcher.
    await c.close();
    await waitFor(() => a.assignments().length === 2, 'a owns both partitions again');
    const zombie = held.find((m) => m.partition === moved)!;
    expect(zombie.grant?.memberId).toBe(a.memberId);
    expect(await codeOf(processOnce(b, zombie))).toBe('CONFLICT');
    expect(await outDepth(b)).toBe(0);
    expect(await committed(b, moved)).toBe(1);
    // The partition a kept was never granted again: its message still commits.
    await processOnce(
      b,
      held.find((m) => m.partition !== moved)!,
    );
    expect(await outDepth(b)).toBe(1);
    for (const release of releases) release();
  });

  it('after a session expiry and a rejoin under the same member id, a message of the earlier grant cannot commit', async () => {
    const b = await setup(1);
    await b.publish('orders', { payload: 0 });
    const seen: TopicMessage[] = [];
    const a = await subscribe(b, SHORT_SESSION, (m) => void seen.push(m));
    await waitFor(() => seen.length === 1, 'the first delivery');
    // Heartbeats stop counting (an event loop blocked for longer than the session): a expires ...
    const silent = vi.spyOn(GroupCoordinator.prototype, 'heartbeat').mockReturnValue(true);
    await waitFor(() => a.assignments().length === 0, 'a expired');
    silent.mockRestore();
    // ... and its next heartbeat finds it out of the group: it rejoins, under the same id.
    await waitFor(() => a.assignments().length === 1, 'a rejoined');
    await b.publish('orders', { payload: 1 });
    await waitFor(() => seen.length === 2, 'a delivery under the new grant');
    const [old, fresh] = seen;
    expect(fresh.grant!.memberId).toBe(old.grant!.memberId);
    expect(fresh.grant!.assignmentEpoch).not.toBe(old.grant!.assignmentEpoch);
    expect(await codeOf(processOnce(b, old))).toBe('CONFLICT');
    expect(await outDepth(b)).toBe(0);
    await processOnce(b, fresh);
    expect(await outDepth(b)).toBe(1);
    expect(await committed(b, 0)).toBe(2);
  });

  it('a fenced commit holds its partition until its offset is written, not while another output of it waits', async () => {
    const b = await setup(2);
    // A full queue with overflow 'block': the transactions' outputs to it wait for room.
    await b.createQueue('full', { maxLength: 1, overflow: 'block', blockTimeoutMs: 60_000 });
    await b.publish('full', { payload: 'filler' });
    await b.publish('orders', [
      { partition: 0, payload: 0 },
      { partition: 1, payload: 1 },
    ]);
    let inTransaction = 0;
    let finished = 0;
    const handled: string[] = [];
    const handler = (who: string) => async (m: TopicMessage) => {
      handled.push(`${who} ${m.partition}:${m.offset}`);
      inTransaction++;
      await b.transaction(async (tx) => {
        await tx.publish('full', { payload: m.offset });
        await tx.commitOffset(m);
      });
      finished++;
    };
    await subscribe(b, SHORT_SESSION, handler('a'));
    await waitFor(
      async () => inTransaction === 2 && (await committed(b, 0)) === 1 && (await committed(b, 1)) === 1,
      'both offsets written while their outputs wait for room',
    );
    // c joins: a's revoke of the partition that moves times out (a's handler still waits), and c
    // gets it then: the commit of it is written, the other output is not a reason to wait.
    let joined = false;
    const joining = subscribe(b, SAFE_SESSION, handler('c')).then((s) => {
      joined = true;
      return s;
    });
    await waitFor(() => joined, 'c joined while the outputs still wait', 5_000);
    expect(inTransaction).toBe(2);
    const c = await joining;
    expect(c.assignments()).toHaveLength(1);
    expect(finished).toBe(0);
    // Room at last: both transactions finish; c started after a's commit, so nothing ran twice.
    while (finished < 2) for (const m of await b.receive('full', { max: 10, waitMs: 50 })) await m.ack();
    await sleep(100);
    expect(handled.sort()).toEqual(['a 0:0', 'a 1:0']);
    expect([await committed(b, 0), await committed(b, 1)]).toEqual([1, 1]);
  });
});
