// A misspelt option is refused, not ignored, embedded and over the native protocol alike: each
// options object with an unknown field, or null, is INVALID_ARGUMENT naming the field and the known
// ones, and nothing happens (no subscription, consumer or binding, no message leased or settled).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  BindingOptions,
  ConsumeOptions,
  NackOptions,
  QueueOptions,
  QueueStats,
  ReceiveOptions,
  RedriveOptions,
  StartPosition,
  SubscribeOptions,
  TopicOptions,
  TopicStats,
} from '../../src/broker/index.js';
import { factories, waitFor, type Target } from './factories.js';

const never = (): void => {
  throw new Error('no message should be handed to this handler');
};

describe.each(factories)('options contract (%s)', (_name, make) => {
  let t: Target;
  beforeEach(async () => {
    t = await make();
  });
  afterEach(async () => {
    await t.close();
  });

  const queueStats = async (name: string): Promise<QueueStats> => (await t.wharf.stats(name)) as QueueStats;

  it('subscribe refuses a misspelt option and joins no group', async () => {
    await t.wharf.createTopic('orders');
    await t.wharf.publish('orders', { payload: 1 });
    const misspelt = { group: 'billing', form: 'earliest' } as SubscribeOptions;
    await expect(t.wharf.subscribe('orders', misspelt, never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/unknown subscribe option field "form"; the fields are group, from, ackMode/),
    });
    const withExtra = { group: 'billing', from: { offset: 0, partition: 0 } as unknown as StartPosition };
    await expect(t.wharf.subscribe('orders', withExtra, never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/from is/),
    });
    await expect(t.wharf.subscribe('orders', null as unknown as SubscribeOptions, never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(((await t.wharf.stats('orders')) as TopicStats).groups).toEqual({});
    // A position names one field: an offset with a second one is refused by seek too.
    const sub = await t.wharf.subscribe('orders', { from: 'latest' }, never);
    await expect(sub.seek({ offset: 0, timestamp: 0 } as unknown as StartPosition)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await sub.close();
  });

  it('consume refuses a misspelt option and leases nothing', async () => {
    await t.wharf.createQueue('jobs');
    await t.wharf.publish('jobs', { payload: 'job' });
    await expect(t.wharf.consume('jobs', { concurency: 2 } as ConsumeOptions, never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(
        /unknown consume option field "concurency"; the fields are concurrency, prefetch, ackMode, visibilityTimeoutMs/,
      ),
    });
    await expect(t.wharf.consume('jobs', null as unknown as ConsumeOptions, never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const got = await t.wharf.receive('jobs', { max: 10 });
    expect(got.map((m) => [m.payload, m.deliveryCount])).toEqual([['job', 1]]);
  });

  it('receive refuses a misspelt option and leases nothing', async () => {
    await t.wharf.createQueue('jobs');
    await t.wharf.publish('jobs', { payload: 'job' });
    await expect(t.wharf.receive('jobs', { maxMessages: 5 } as ReceiveOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(
        /unknown receive option field "maxMessages"; the fields are max, waitMs, visibilityTimeoutMs/,
      ),
    });
    await expect(t.wharf.receive('jobs', null as unknown as ReceiveOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await queueStats('jobs')).toMatchObject({ depth: 1, inFlight: 0 });
  });

  it('receive refuses a max, waitMs or visibilityTimeoutMs that is not a whole number in range (visibilityTimeoutMs 0 included) and leases nothing', async () => {
    await t.wharf.createQueue('jobs');
    await t.wharf.publish('jobs', { payload: 'job' });
    const refused: ReceiveOptions[] = [
      { max: 1.5 },
      { max: 2 ** 32 + 1 },
      { max: 0 },
      { max: 1_001 },
      { waitMs: 0.5 },
      { waitMs: -1 },
      { waitMs: 2 ** 32 },
      { visibilityTimeoutMs: 0 },
      { visibilityTimeoutMs: 1.5 },
      { visibilityTimeoutMs: 2 ** 32 + 1_000 },
      { max: Number.NaN },
    ];
    for (const options of refused) {
      await expect(t.wharf.receive('jobs', options), JSON.stringify(options)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
    // A queue that does not exist is NOT_FOUND first.
    await expect(t.wharf.receive('missing', { visibilityTimeoutMs: 0 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await queueStats('jobs')).toMatchObject({ depth: 1, inFlight: 0 });
    const [m] = await t.wharf.receive('jobs', { max: 1_000, waitMs: 0, visibilityTimeoutMs: 1 });
    expect(m.payload).toBe('job');
  });

  it('extendVisibility refuses a number of milliseconds that is not a whole number in range', async () => {
    await t.wharf.createQueue('jobs');
    await t.wharf.publish('jobs', { payload: 'job' });
    const [m] = await t.wharf.receive('jobs');
    for (const ms of [1.5, -1, 2 ** 32 + 1, Number.NaN]) {
      await expect(m.extendVisibility(ms), String(ms)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await m.extendVisibility(0);
  });

  it('nack refuses a misspelt option and leaves the message leased', async () => {
    await t.wharf.createQueue('jobs');
    await t.wharf.publish('jobs', { payload: 'job' });
    const [m] = await t.wharf.receive('jobs');
    await expect(m.nack({ delayMS: 0 } as NackOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/unknown nack option field "delayMS"; the fields are delayMs, requeue, error/),
    });
    await expect(m.nack(null as unknown as NackOptions)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await queueStats('jobs')).toMatchObject({ depth: 0, inFlight: 1, nackRate: 0 });
    await m.ack(); // the receipt is still the live lease: nothing was settled
    expect(await queueStats('jobs')).toMatchObject({ depth: 0, inFlight: 0 });
  });

  it('redrive refuses a misspelt option and moves nothing', async () => {
    await t.wharf.createQueue('jobs.dlq');
    await t.wharf.createQueue('jobs', { deadLetterQueue: 'jobs.dlq' });
    await t.wharf.createQueue('other');
    await t.wharf.publish('jobs', { payload: 'job' });
    const [m] = await t.wharf.receive('jobs');
    await m.nack({ requeue: false });
    await expect(t.wharf.redrive('jobs.dlq', { target: 'other' } as RedriveOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/unknown redrive option field "target"; the fields are to, max/),
    });
    await expect(t.wharf.redrive('jobs.dlq', null as unknown as RedriveOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await queueStats('jobs.dlq')).toMatchObject({ depth: 1, inFlight: 0 });
    expect(await queueStats('other')).toMatchObject({ depth: 0 });
    expect(await queueStats('jobs')).toMatchObject({ depth: 0 });
  });

  it('bind and unbind refuse a misspelt option and change no binding', async () => {
    await t.wharf.createExchange('events', { type: 'topic' });
    await t.wharf.createQueue('audit');
    await expect(
      t.wharf.bind('events', { queue: 'audit' }, { patern: 'order.*' } as BindingOptions),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(
        /unknown binding option field "patern"; the fields are pattern, headers, match, filter/,
      ),
    });
    await expect(t.wharf.bind('events', { queue: 'audit' }, null as unknown as BindingOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await t.wharf.listBindings('events')).toEqual([]);
    const binding = await t.wharf.bind('events', { queue: 'audit' }, { pattern: 'order.*' });
    await expect(
      t.wharf.unbind('events', { queue: 'audit' }, { pattern: 'order.*', matches: 'all' } as BindingOptions),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/unknown binding option field "matches"/),
    });
    expect((await t.wharf.listBindings('events')).map((b) => b.id)).toEqual([binding.id]);
  });

  it('createTopic and createQueue refuse null options; undefined means the defaults', async () => {
    await expect(t.wharf.createTopic('t', null as unknown as TopicOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/not null/),
    });
    await expect(t.wharf.createQueue('q', null as unknown as QueueOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/not null/),
    });
    expect(await t.wharf.listTopics()).toEqual([]);
    expect(await t.wharf.listQueues()).toEqual([]);
    expect(await t.wharf.createTopic('t', undefined)).toMatchObject({ name: 't', partitions: 1 });
    expect(await t.wharf.createQueue('q', undefined)).toMatchObject({ name: 'q' });
  });

  it('options with only known fields still work, undefined values included', async () => {
    await t.wharf.createQueue('jobs');
    await t.wharf.publish('jobs', [{ payload: 1 }, { payload: 2 }]);
    const [m] = await t.wharf.receive('jobs', { max: 1, waitMs: undefined, visibilityTimeoutMs: 5_000 });
    await m.nack({ delayMs: 0, requeue: undefined, error: 'retry' });
    const seen: unknown[] = [];
    const c = await t.wharf.consume(
      'jobs',
      { concurrency: 1, prefetch: 1, ackMode: 'manual', visibilityTimeoutMs: undefined },
      (msg) => {
        seen.push(msg.payload);
      },
    );
    await waitFor(() => seen.length === 2);
    await c.close();
    expect(seen.sort()).toEqual([1, 2]);
  });
});
