// SubscribeOptions.startOffsets: a reader without a group starts each partition it names at that
// offset (clamped to what the partition holds), and the others at `from`; anything else is refused.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker, type SubscribeOptions, type TopicMessage } from '../../src/broker/index.js';
import { WharfError } from '../../src/common/index.js';
import { sleep, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function topicOf3(): Promise<Broker> {
  const b = await Broker.open({ inMemory: true });
  cleanups.push(() => b.close());
  await b.createTopic('t', { partitions: 3 });
  // Offsets 0..4 in every partition.
  await b.publish(
    't',
    Array.from({ length: 15 }, (_, i) => ({ partition: i % 3, payload: Math.floor(i / 3) })),
  );
  return b;
}

const at = (m: TopicMessage): string => `${m.partition}:${String(m.payload)}`;

describe('topics: startOffsets', () => {
  it('a reader starts each named partition at its offset and the others at `from`', async () => {
    const b = await topicOf3();
    const seen: string[] = [];
    const sub = await b.subscribe('t', { from: 'latest', startOffsets: { 0: 3, 2: 4 } }, (m) => void seen.push(at(m)));
    cleanups.push(() => sub.close());
    await waitFor(() => seen.length === 3, 'the named partitions');
    await b.publish('t', { partition: 1, payload: 5 });
    await waitFor(() => seen.length === 4, 'partition 1 from latest');
    await sleep(20);
    expect([...seen].sort()).toEqual(['0:3', '0:4', '1:5', '2:4']);
  });

  it('an offset past what a partition holds is clamped, as from { offset } is', async () => {
    const b = await topicOf3();
    const seen: string[] = [];
    const sub = await b.subscribe('t', { from: 'earliest', startOffsets: { 0: 99 } }, (m) => void seen.push(at(m)));
    cleanups.push(() => sub.close());
    await b.publish('t', { partition: 0, payload: 5 });
    await waitFor(() => seen.length === 11, 'partitions 1 and 2 from earliest, partition 0 from its end');
    expect(seen.filter((s) => s.startsWith('0:'))).toEqual(['0:5']);
  });

  it.each<[string, SubscribeOptions, RegExp]>([
    ['a group member', { group: 'g', startOffsets: { 0: 1 } }, /without a group/],
    ['a partition the topic lacks', { startOffsets: { 3: 1 } }, /partition "3"; topic "t" has partitions 0 to 2/],
    ['a partition that is no number', { startOffsets: { first: 1 } as never }, /partition "first"/],
    ['a negative offset', { startOffsets: { 0: -1 } }, /startOffsets\[0\] is -1; use an offset n >= 0/],
    ['a fractional offset', { startOffsets: { 0: 1.5 } }, /startOffsets\[0\] is 1.5/],
    ['an array', { startOffsets: [1, 2] as never }, /must be an object of partition -> offset/],
  ])('refuses startOffsets for %s (INVALID_ARGUMENT)', async (_what, options, message) => {
    const b = await topicOf3();
    const err = await b.subscribe('t', options, () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WharfError);
    expect((err as WharfError).code).toBe('INVALID_ARGUMENT');
    expect((err as WharfError).message).toMatch(message);
  });
});
