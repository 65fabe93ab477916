// `wharf consume --count N` and `wharf tail --count N` on a topic of several partitions: the
// deliveries of one frame run their handlers at once, and still exactly N lines are printed; with a
// group only those N are committed, so the next run prints the rest. What comes past N is released,
// not failed: a reader leaving raises no errorRate.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TopicStats } from '../../src/broker/index.js';
import type { WharfServer } from '../../src/server/index.js';
import { cli, startTestServer } from './cli-helpers.js';

let server: WharfServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const PARTITIONS = 4;

const payloads = (stdout: string): number[] =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { payload: { p: number } }).payload.p);

/** A topic with one message in each of its partitions, payload { p: partition }. */
async function topicWithOneMessagePerPartition(name: string): Promise<void> {
  await server.broker.createTopic(name, { partitions: PARTITIONS });
  for (let p = 0; p < PARTITIONS; p++) await server.broker.publish(name, { payload: { p }, partition: p });
}

describe('consume --count on a topic of several partitions', () => {
  it('a private reader prints exactly --count lines', async () => {
    await topicWithOneMessagePerPartition('spread');
    const out = await cli(server, ['consume', 'spread', '--count', '1']);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(payloads(out.stdout)).toHaveLength(1);
  });

  it('a group prints exactly --count lines and commits only those: the next run prints the rest', async () => {
    await topicWithOneMessagePerPartition('spread-group');
    const first = await cli(server, ['consume', 'spread-group', '--group', 'g', '--count', '2']);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(payloads(first.stdout)).toHaveLength(2);
    const stats = (await server.broker.stats('spread-group')) as TopicStats;
    expect(stats.groups.g.lag).toBe(PARTITIONS - 2);
    const rest = await cli(server, ['consume', 'spread-group', '--group', 'g', '--count', '2']);
    expect(rest).toMatchObject({ code: 0, stderr: '' });
    expect([...payloads(first.stdout), ...payloads(rest.stdout)].sort()).toEqual([0, 1, 2, 3]);
  });

  it('tail prints exactly --count lines of messages that arrive in every partition at once', async () => {
    await server.broker.createTopic('spread-tail', { partitions: PARTITIONS });
    const tail = cli(server, ['tail', 'spread-tail', '--count', '1']);
    await new Promise((r) => setTimeout(r, 300)); // subscribed from latest
    await server.broker.publish(
      'spread-tail',
      Array.from({ length: PARTITIONS }, (_, p) => ({ payload: { p }, partition: p })),
    );
    const out = await tail;
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(payloads(out.stdout)).toHaveLength(1);
  });
});

describe('consume --count leaves without counting errors', () => {
  /** A topic of `partitions` partitions holding messages { p: 0 } .. { p: count - 1 }, spread over them. */
  async function topicOf(name: string, partitions: number, count: number): Promise<void> {
    await server.broker.createTopic(name, { partitions });
    await server.broker.publish(
      name,
      Array.from({ length: count }, (_, i) => ({ payload: { p: i }, partition: i % partitions })),
    );
  }
  const stats = async (name: string): Promise<TopicStats> => (await server.broker.stats(name)) as TopicStats;

  it('a group past --count 5 of 10 messages: errorRate stays 0, exactly 5 are committed, the next run gets the rest', async () => {
    await topicOf('leave-group', 1, 10);
    const first = await cli(server, ['consume', 'leave-group', '--group', 'g', '--count', '5']);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(payloads(first.stdout)).toEqual([0, 1, 2, 3, 4]);
    const after = await stats('leave-group');
    expect(after.errorRate).toBe(0);
    expect(after.groups.g.partitions[0].committed).toBe(5);
    const rest = await cli(server, ['consume', 'leave-group', '--group', 'g', '--count', '5']);
    expect(payloads(rest.stdout)).toEqual([5, 6, 7, 8, 9]);
    expect((await stats('leave-group')).errorRate).toBe(0);
  });

  it('a group on several partitions, and a private reader: errorRate stays 0', async () => {
    await topicOf('leave-spread', PARTITIONS, 40);
    const group = await cli(server, ['consume', 'leave-spread', '--group', 'g', '--count', '3']);
    expect(payloads(group.stdout)).toHaveLength(3);
    expect((await stats('leave-spread')).groups.g.lag).toBe(40 - 3);
    const reader = await cli(server, ['consume', 'leave-spread', '--count', '3']);
    expect(payloads(reader.stdout)).toHaveLength(3);
    expect((await stats('leave-spread')).errorRate).toBe(0);
  });
});
