// `wharf consume --count N` and `wharf tail --count N` on a topic of several partitions: the
// deliveries of one frame run their handlers at once, and still exactly N lines are printed; with a
// group only those N are committed, so the next run prints the rest.
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
