// Consumer groups on a broker: partitions shared by members, rebalances on join/leave/crash, every
// message processed, and a rebalance by itself redelivering nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { Subscription, TopicMessage, TopicStats } from '../../src/broker/index.js';
import { simulateMemberCrash } from '../../src/broker/topics/member-crash.js';
import { sleep, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Short enough that a crashed member expires quickly, long enough that a loaded machine does not expire a live one. */
const FAST_SESSION = { sessionTimeoutMs: 1000, heartbeatIntervalMs: 100 };
/** For tests where nobody crashes: an expiry there would be a spurious one. */
const SAFE_SESSION = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000 };

async function setup(partitions = 6) {
  const b = await Broker.open({ inMemory: true });
  cleanups.push(() => b.close());
  await b.createTopic('orders', { partitions });
  return b;
}

describe('consumer groups: rebalancing', () => {
  it('3 members share 6 partitions; one closes, one crashes; every message is processed and the survivor owns all partitions', async () => {
    const b = await setup();
    const processed = new Map<number, number>(); // message -> times processed
    const members: Subscription[] = [];
    const handler = async (m: TopicMessage) => {
      await sleep(0);
      processed.set(m.payload as number, (processed.get(m.payload as number) ?? 0) + 1);
    };
    for (let i = 0; i < 3; i++)
      members.push(await b.subscribe('orders', { group: 'billing', from: 'earliest', ...FAST_SESSION }, handler));
    cleanups.push(async () => void (await Promise.all(members.map((m) => m.close()))));
    expect(members.map((m) => m.assignments().length)).toEqual([2, 2, 2]);
    expect(members.flatMap((m) => m.assignments()).sort()).toEqual([0, 1, 2, 3, 4, 5]);

    const total = 3000;
    let next = 0;
    const publishSome = async (count: number) => {
      const batch = Array.from({ length: count }, () => ({ key: `k${next % 97}`, payload: next++ }));
      await b.publish('orders', batch);
    };
    await publishSome(1000);
    await waitFor(() => processed.size > 200, 'some progress');
    await members[0].close(); // clean leave
    await publishSome(1000);
    simulateMemberCrash(members[1]); // silent: only the session timeout removes it
    await publishSome(1000);
    expect(next).toBe(total);

    await waitFor(() => members[2].assignments().length === 6, 'the survivor owns all partitions', 15_000);
    await waitFor(() => processed.size === total, 'every message processed', 20_000);
    for (let i = 0; i < total; i++) expect(processed.has(i), `message ${i}`).toBe(true);
    await sleep(50);
    const stats = (await b.stats('orders')) as TopicStats;
    expect(stats.groups.billing.members).toBe(1);
    expect(stats.groups.billing.partitions.every((p) => p.owner === members[2].memberId)).toBe(true);
    expect(stats.groups.billing.lag).toBe(0);
  });

  it('a rebalance alone (members joining and leaving) redelivers nothing', async () => {
    const b = await setup(4);
    const counts = new Map<number, number>();
    const handler = async (m: TopicMessage) => {
      await sleep(0);
      counts.set(m.payload as number, (counts.get(m.payload as number) ?? 0) + 1);
    };
    const a = await b.subscribe('orders', { group: 'g', from: 'earliest', ...SAFE_SESSION }, handler);
    let next = 0;
    const publisher = (async () => {
      for (let r = 0; r < 20; r++) {
        await b.publish(
          'orders',
          Array.from({ length: 50 }, () => ({ key: `k${next}`, payload: next++ })),
        );
        await sleep(5);
      }
    })();
    const others: Subscription[] = [];
    for (let i = 0; i < 3; i++) {
      await sleep(15);
      others.push(await b.subscribe('orders', { group: 'g', from: 'earliest', ...SAFE_SESSION }, handler));
    }
    await sleep(20);
    await others[0].close();
    await a.close();
    await publisher;
    await waitFor(() => counts.size === 1000, 'all 1000 processed', 20_000);
    await sleep(50);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    await Promise.all(others.map((o) => o.close()));
  });

  it('a member that joins takes partitions only from others, each partition has exactly one member', async () => {
    const b = await setup(6);
    const subs: Subscription[] = [];
    for (let i = 0; i < 4; i++) {
      subs.push(await b.subscribe('orders', { group: 'g', ...SAFE_SESSION }, () => undefined));
      const all = subs.flatMap((s) => s.assignments());
      expect(all.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    }
    expect(subs.map((s) => s.assignments().length).sort()).toEqual([1, 1, 2, 2]);
    // More members than partitions: the extra one owns nothing.
    for (let i = 0; i < 3; i++)
      subs.push(await b.subscribe('orders', { group: 'g', ...SAFE_SESSION }, () => undefined));
    expect(subs.filter((s) => s.assignments().length === 0).length).toBe(1);
    await Promise.all(subs.map((s) => s.close()));
  });

  it('a revoke that timed out leaves a fetcher whose late commit is refused, also once the partition came back to its member', async () => {
    const b = await setup(2);
    for (const partition of [0, 1])
      await b.publish(
        'orders',
        Array.from({ length: 10 }, (_, i) => ({ partition, payload: i })),
      );
    // a's handler holds the first message of each partition longer than a's session timeout.
    const releases: Array<() => void> = [];
    const slow = { sessionTimeoutMs: 200, heartbeatIntervalMs: 50 };
    const a = await b.subscribe('orders', { group: 'g', from: 'earliest', ...slow }, (m: TopicMessage) => {
      if (m.offset === 0 && m.deliveryCount === 1 && releases.length < 2)
        return new Promise<void>((r) => releases.push(r));
    });
    cleanups.push(() => a.close());
    await waitFor(() => releases.length === 2, 'a holds both partitions, each on offset 0');

    // c joins: a's revoke of the partition that moves times out, c takes it over and finishes it.
    let cSeen = 0;
    const c = await b.subscribe('orders', { group: 'g', from: 'earliest', ...SAFE_SESSION }, () => void cSeen++);
    const [moved] = c.assignments();
    await waitFor(() => cSeen === 10, 'c consumed the partition it took');
    await c.close(); // commits 10; the partition goes back to a, with a fresh fetcher
    const committed = async (p: number) => ((await b.stats('orders')) as TopicStats).groups.g.partitions[p].committed;
    expect(await committed(moved)).toBe(10);

    // a's old fetcher of that partition finally settles offset 0 and commits 1: refused.
    for (const release of releases) release();
    await waitFor(async () => (await committed(1 - moved)) === 10, 'a finished the partition it kept');
    await sleep(20);
    expect(await committed(moved)).toBe(10);
  });
});
