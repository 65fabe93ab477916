// Subscribing: start positions (earliest, latest, offset, timestamp) for groups without commits,
// private readers, pub/sub across groups, seek replay, durable commits, and delivery guarantees.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { StartPosition, TopicMessage, TopicStats } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';
import type { WharfError } from '../../src/common/index.js';
import { simulateMemberCrash } from '../../src/broker/topics/member-crash.js';
import { codeOf, sleep, tempDir, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(options: Parameters<typeof Broker.open>[0] = { inMemory: true }): Promise<Broker> {
  const b = await Broker.open(options);
  cleanups.push(() => b.close());
  return b;
}

const n = (m: TopicMessage): number => m.payload as number;

async function collect(b: Broker, topic: string, options: Parameters<Broker['subscribe']>[1], out: number[] = []) {
  const sub = await b.subscribe(topic, options, (m) => void out.push(n(m)));
  cleanups.push(() => sub.close());
  return { sub, out };
}

describe('topics: subscribe', () => {
  it("from 'earliest', 'latest' and { offset } apply to a group with no committed offset", async () => {
    const b = await open();
    await b.createTopic('t', { partitions: 1 });
    await b.publish(
      't',
      [0, 1, 2, 3, 4].map((payload) => ({ payload })),
    );
    const earliest = await collect(b, 't', { group: 'e', from: 'earliest' });
    const latest = await collect(b, 't', { group: 'l', from: 'latest' });
    const at = await collect(b, 't', { group: 'o', from: { offset: 3 } });
    const dflt = await collect(b, 't', {}); // a private reader defaults to 'latest'
    await b.publish('t', { payload: 5 });
    await waitFor(
      () => earliest.out.length === 6 && latest.out.length === 1 && at.out.length === 3 && dflt.out.length === 1,
      'deliveries',
    );
    expect(earliest.out).toEqual([0, 1, 2, 3, 4, 5]);
    expect(latest.out).toEqual([5]);
    expect(at.out).toEqual([3, 4, 5]);
    expect(dflt.out).toEqual([5]);
  });

  it('from { timestamp } starts at the first message at or after that time', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const b = await open({ inMemory: true, clock });
    await b.createTopic('t', { partitions: 2 });
    await b.publish(
      't',
      [0, 1, 2, 3].map((payload) => ({ payload })),
    );
    clock.advance(60_000);
    await b.publish(
      't',
      [4, 5, 6, 7].map((payload) => ({ payload })),
    );
    const { out } = await collect(b, 't', { group: 'ts', from: { timestamp: 1_700_000_030_000 } });
    await waitFor(() => out.length === 4, 'the four later messages');
    await sleep(30);
    expect(out.sort()).toEqual([4, 5, 6, 7]);
  });

  it('a { timestamp } that is not whole milliseconds is refused by subscribe and seek, and the group keeps consuming', async () => {
    const b = await open();
    await b.createTopic('t', { partitions: 1 });
    const wholeMsOnly = async (timestamp: number) =>
      codeOf(b.subscribe('t', { group: 'g', from: { timestamp } }, () => undefined));
    expect(await wholeMsOnly(Date.now() - 0.5)).toBe('INVALID_ARGUMENT'); // e.g. timeOrigin + performance.now()
    expect(await wholeMsOnly(1e300)).toBe('INVALID_ARGUMENT');
    const refused = await b
      .subscribe('t', { from: { timestamp: 1.5 } }, () => undefined)
      .catch((err: WharfError) => err.message);
    expect(refused).toMatch(/from\.timestamp .*whole milliseconds/);

    const { sub, out } = await collect(b, 't', { group: 'g', from: 'earliest' });
    await b.publish('t', { payload: 1 });
    await waitFor(() => out.length === 1, 'first delivery');
    expect(await codeOf(sub.seek({ timestamp: 1e300 }))).toBe('INVALID_ARGUMENT');
    await b.publish('t', { payload: 2 });
    await waitFor(() => out.length === 2, 'delivery after the refused seek');
    expect(out).toEqual([1, 2]);
  });

  it('a group with no committed offset commits where it starts, so a caught-up group at the end shows lag 0', async () => {
    const b = await open();
    await b.createTopic('t', { partitions: 1 });
    await b.publish(
      't',
      Array.from({ length: 100 }, (_, i) => ({ payload: i })),
    );
    const { out } = await collect(b, 't', { group: 'g', from: 'latest' });
    const groupStats = async () => ((await b.stats('t')) as TopicStats).groups.g;
    await waitFor(async () => (await groupStats()).partitions[0].committed !== -1, 'a commit', 2000);
    const g = await groupStats();
    expect(out).toEqual([]);
    expect(g.partitions[0]).toMatchObject({ committed: 100, lag: 0 });
    expect(g.lag).toBe(0);
  });

  it("a member that crashes before its first message leaves its start committed: the next does not resolve 'latest' again", async () => {
    const b = await open();
    await b.createTopic('t', { partitions: 1 });
    await b.publish('t', { payload: 0 });
    const session = { sessionTimeoutMs: 200, heartbeatIntervalMs: 50 };
    const first = await collect(b, 't', { group: 'g', from: 'latest', ...session });
    await waitFor(() => first.sub.assignments().length === 1, 'the first member owns the partition');
    const committed = async () => ((await b.stats('t')) as TopicStats).groups.g.partitions[0].committed;
    await waitFor(async () => (await committed()) !== -1, 'the start position committed', 2000);
    simulateMemberCrash(first.sub);
    await b.publish('t', { payload: 1 }); // while the partition still waits for the crashed member's session
    const next = await collect(b, 't', { group: 'g', from: 'latest', ...session });
    await waitFor(() => next.out.length === 1, 'the message published after the crash', 3000);
    expect(first.out).toEqual([]);
    expect(next.out).toEqual([1]);
  });

  it('from is ignored once the group has a committed offset', async () => {
    const b = await open();
    await b.createTopic('t');
    await b.publish(
      't',
      [0, 1, 2].map((payload) => ({ payload })),
    );
    const first = await collect(b, 't', { group: 'g', from: 'earliest' });
    await waitFor(() => first.out.length === 3, 'first pass');
    await first.sub.close();
    await b.publish('t', { payload: 3 });
    const second = await collect(b, 't', { group: 'g', from: 'earliest' });
    await waitFor(() => second.out.length === 1, 'only the new message');
    await sleep(30);
    expect(second.out).toEqual([3]);
  });

  it('different groups each get every message (pub/sub)', async () => {
    const b = await open();
    await b.createTopic('t', { partitions: 3 });
    const groups = await Promise.all(
      ['billing', 'audit', 'search'].map((group) => collect(b, 't', { group, from: 'earliest' })),
    );
    await b.publish(
      't',
      Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, payload: i })),
    );
    await waitFor(() => groups.every((g) => g.out.length === 30), 'every group gets all 30');
    for (const g of groups) expect([...g.out].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('seek replays a group from an earlier position', async () => {
    const b = await open();
    await b.createTopic('t', { partitions: 2 });
    await b.publish(
      't',
      Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, payload: i })),
    );
    const { sub, out } = await collect(b, 't', { group: 'g', from: 'earliest' });
    await waitFor(() => out.length === 10, 'first pass');
    await sub.seek('earliest');
    await waitFor(() => out.length === 20, 'replay');
    expect(out.slice(10).sort((x, y) => x - y)).toEqual(out.slice(0, 10).sort((x, y) => x - y));
    const stats = (await b.stats('t')) as TopicStats;
    expect(stats.groups.g.lag).toBe(0);
    await sub.seek({ offset: 1_000_000 }); // past the end: clamps to the end
    await b.publish('t', { payload: 99, key: 'x' });
    await waitFor(() => out.length === 21, 'the new message only');
    expect(out[20]).toBe(99);
  });

  it('seek on a private reader replays for that reader', async () => {
    const b = await open();
    await b.createTopic('t');
    await b.publish(
      't',
      [0, 1, 2].map((payload) => ({ payload })),
    );
    const { sub, out } = await collect(b, 't', { from: 'earliest' });
    await waitFor(() => out.length === 3, 'first pass');
    await sub.seek({ offset: 1 });
    await waitFor(() => out.length === 5, 'replay from offset 1');
    expect(out).toEqual([0, 1, 2, 1, 2]);
    expect(((await b.stats('t')) as TopicStats).groups).toEqual({}); // a private reader commits nothing
  });

  it('a restarted disk broker resumes a group where it committed', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const b1 = await Broker.open({ dataDir: dir });
    await b1.createTopic('t', { partitions: 2 });
    await b1.publish(
      't',
      Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, payload: i })),
    );
    const first: number[] = [];
    const s1 = await b1.subscribe('t', { group: 'g', from: 'earliest' }, (m) => void first.push(n(m)));
    await waitFor(() => first.length === 10, 'first pass');
    await s1.close();
    await b1.publish(
      't',
      Array.from({ length: 4 }, (_, i) => ({ key: `k${i}`, payload: 10 + i })),
    );
    await b1.close();
    const b2 = await open({ dataDir: dir });
    const { out } = await collect(b2, 't', { group: 'g', from: 'earliest' });
    await waitFor(() => out.length === 4, 'the 4 uncommitted messages');
    await sleep(50);
    expect(out.sort((x, y) => x - y)).toEqual([10, 11, 12, 13]);
  });

  it('at-least-once (default): a throwing handler gets the message again with deliveryCount+1, counted in errorRate', async () => {
    const b = await open();
    await b.createTopic('t');
    await b.publish(
      't',
      [0, 1, 2].map((payload) => ({ payload })),
    );
    const attempts: Array<[number, number]> = [];
    const sub = await b.subscribe('t', { group: 'g', from: 'earliest' }, (m) => {
      attempts.push([n(m), m.deliveryCount]);
      if (n(m) === 1 && m.deliveryCount < 3) throw new Error('transient');
    });
    cleanups.push(() => sub.close());
    await waitFor(() => attempts.length === 5, 'five attempts');
    expect(attempts).toEqual([
      [0, 1],
      [1, 1],
      [1, 2],
      [1, 3],
      [2, 1],
    ]);
    const stats = (await b.stats('t')) as TopicStats;
    expect(stats.errorRate).toBeGreaterThan(0);
    await sub.close();
    expect(((await b.stats('t')) as TopicStats).groups.g.partitions[0].committed).toBe(3);
  });

  it("at-most-once (ackMode 'auto'): a throwing handler's message is not retried nor redelivered after restart", async () => {
    const b = await open();
    await b.createTopic('t');
    await b.publish(
      't',
      [0, 1, 2].map((payload) => ({ payload })),
    );
    const seen: Array<[number, number]> = [];
    const sub = await b.subscribe('t', { group: 'g', from: 'earliest', ackMode: 'auto' }, (m) => {
      seen.push([n(m), m.deliveryCount]);
      if (n(m) === 1) throw new Error('lost on purpose');
    });
    await waitFor(() => seen.length === 3, 'three deliveries');
    await sleep(30);
    expect(seen).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    expect(((await b.stats('t')) as TopicStats).errorRate).toBeGreaterThan(0);
    await sub.close();
    const again = await collect(b, 't', { group: 'g', from: 'earliest' });
    await sleep(50);
    expect(again.out).toEqual([]);
  });

  it('at-least-once: a message whose handler never finished is delivered again to the next member', async () => {
    const b = await open();
    await b.createTopic('t');
    await b.publish(
      't',
      [0, 1].map((payload) => ({ payload })),
    );
    const seen: number[] = [];
    const sub = await b.subscribe('t', { group: 'g', from: 'earliest' }, (m) => {
      seen.push(n(m));
      if (n(m) === 1) throw new Error('keeps failing');
    });
    await waitFor(() => seen.filter((x) => x === 1).length >= 2, 'message 1 retried');
    await sub.close(); // stops retrying; message 1 stays uncommitted
    const next = await collect(b, 't', { group: 'g', from: 'earliest' });
    await waitFor(() => next.out.length === 1, 'redelivery');
    expect(next.out).toEqual([1]);
  });

  it('stats report partitions, committed offsets, lag and rates', async () => {
    const b = await open();
    await b.createTopic('t', { partitions: 2 });
    await b.publish(
      't',
      Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, payload: i })),
    );
    const { sub, out } = await collect(b, 't', { group: 'g', from: 'earliest' });
    await waitFor(() => out.length === 10, 'all consumed');
    await sub.close();
    await b.publish(
      't',
      Array.from({ length: 3 }, (_, i) => ({ partition: 0, payload: i })),
    );
    const s = (await b.stats('t')) as TopicStats;
    expect(s.kind).toBe('topic');
    expect(s.partitions.map((p) => [p.partition, p.startOffset, p.endOffset])).toEqual([
      [0, 0, 8],
      [1, 0, 5],
    ]);
    expect(s.partitions.every((p) => p.bytes > 0)).toBe(true);
    expect(s.messages).toBe(13);
    expect(s.groups.g).toMatchObject({ lag: 3, members: 0 });
    expect(s.groups.g.partitions.map((p) => [p.partition, p.committed, p.lag])).toEqual([
      [0, 5, 3],
      [1, 5, 0],
    ]);
    expect(s.publishRate).toBeGreaterThan(0);
    expect(s.deliverRate).toBeGreaterThan(0);
    expect(s.errorRate).toBe(0);
  });

  it('a handler sees one message at a time per partition', async () => {
    const b = await open();
    await b.createTopic('t', { partitions: 2 });
    let inFlight = [0, 0];
    let maxSeen = 0;
    const done: number[] = [];
    const sub = await b.subscribe('t', { group: 'g', from: 'earliest' }, async (m) => {
      inFlight[m.partition]++;
      maxSeen = Math.max(maxSeen, inFlight[m.partition]);
      await sleep(1);
      inFlight[m.partition]--;
      done.push(n(m));
    });
    cleanups.push(() => sub.close());
    await b.publish(
      't',
      Array.from({ length: 20 }, (_, i) => ({ partition: i % 2, payload: i })),
    );
    await waitFor(() => done.length === 20, 'all handled');
    expect(maxSeen).toBe(1);
    inFlight = [0, 0];
  });

  it.each<[StartPosition]>([['earliest'], [{ offset: 0 }]])(
    'a deleted topic stops its subscriptions (%j)',
    async (from) => {
      const b = await open();
      await b.createTopic('t');
      const { out } = await collect(b, 't', { group: 'g', from });
      await b.publish('t', { payload: 1 });
      await waitFor(() => out.length === 1, 'delivery');
      await b.deleteTopic('t');
      await b.createTopic('t');
      await b.publish('t', { payload: 2 });
      await sleep(30);
      expect(out).toEqual([1]);
    },
  );
});
