// Options objects hold only the fields their API knows: a misspelt or unknown field, an array or
// null is INVALID_ARGUMENT naming it, nothing is created; a data directory whose catalog holds an
// unknown field (written before they were refused) still opens, without it. The options of
// subscribe, consume, receive, nack, redrive and bind are checked embedded and remote alike in
// test/contract/options.contract.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Broker,
  type BrokerOptions,
  type QueueOptions,
  type TopicOptions,
  type ExchangeOptions,
} from '../../src/broker/index.js';
import { LIMITS, optionFields } from '../../src/common/index.js';
import { openTestBroker, type TestBroker } from './queue-helpers.js';

describe('options fields', () => {
  let t: TestBroker;
  afterEach(() => t.cleanup());

  it('refuses unknown, misspelt and nested unknown fields of queue options', async () => {
    t = await openTestBroker();
    const bad: unknown[] = [
      { visibilityTimeout: 5000 },
      { retry: { initialDelay: 10 } },
      { rateLimit: { perSecond: 5 } },
      [1],
      'fifo',
      null,
    ];
    for (const options of bad) {
      const err = await t.broker.createQueue('q', options as QueueOptions).catch((e: unknown) => e);
      expect(err, JSON.stringify(options)).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(t.broker.createQueue('q', { visibilityTimeout: 5000 } as QueueOptions)).rejects.toThrow(
      /unknown queue option field "visibilityTimeout"; the fields are visibilityTimeoutMs/,
    );
    expect(await t.broker.listQueues()).toEqual([]);
  });

  it('refuses unknown fields and arrays as topic and exchange options', async () => {
    t = await openTestBroker();
    await expect(t.broker.createTopic('t', { partition: 3 } as TopicOptions)).rejects.toThrow(
      /unknown topic option field "partition"/,
    );
    await expect(t.broker.createTopic('t', [] as unknown as TopicOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(t.broker.createExchange('x', { type: 'fanout', durable: true } as ExchangeOptions)).rejects.toThrow(
      /unknown exchange option field "durable"/,
    );
    expect(await t.broker.listTopics()).toEqual([]);
    expect(await t.broker.listExchanges()).toEqual([]);
    // Known fields still work, undefined ones included.
    await t.broker.createQueue('q', {
      visibilityTimeoutMs: 5000,
      deadLetterQueue: undefined,
      retry: { initialDelayMs: 10 },
      rateLimit: { messagesPerSecond: 5 },
    });
    await t.broker.createTopic('t', { partitions: 2, retentionMs: undefined });
    await t.broker.createExchange('x', { type: 'fanout' });
  });

  it('Broker.open refuses a misspelt option', async () => {
    await expect(Broker.open({ inMemory: true, fsyncInterval: 10 } as BrokerOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(
        /unknown Broker.open option field "fsyncInterval"; the fields are dataDir, inMemory, fsync, fsyncIntervalMs/,
      ),
    });
  });

  it('maxMessageBytes goes up to 64 MiB for the broker, a topic and a queue, and no further', async () => {
    const ceiling = 64 * 1024 * 1024;
    await expect(Broker.open({ inMemory: true, maxMessageBytes: ceiling + 1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const b = await Broker.open({ inMemory: true, maxMessageBytes: ceiling });
    try {
      await expect(b.createTopic('t', { maxMessageBytes: ceiling + 1 })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await expect(b.createQueue('q', { maxMessageBytes: ceiling + 1 })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect((await b.createQueue('q', { maxMessageBytes: ceiling })).options.maxMessageBytes).toBe(ceiling);
    } finally {
      await b.close();
    }
  });

  it('a field list names every field of its options type, or the code does not compile', () => {
    type Example = { a?: number; b: string };
    expect(optionFields<Example>({ a: true, b: true })).toEqual(['a', 'b']);
    // These lines are checked by the type checker (tsc --noEmit -p .), not at run time.
    // @ts-expect-error a field of the type left out of the list
    optionFields<Example>({ a: true });
    // @ts-expect-error a field the type does not have
    optionFields<Example>({ a: true, b: true, c: true });
  });

  it('opens a data directory whose stored queue options hold a field it does not know', async () => {
    t = await openTestBroker({ disk: true });
    await t.broker.createQueue('q', { visibilityTimeoutMs: 5000 });
    await t.broker.publish('q', { payload: 'kept' });
    await t.broker.close();
    const path = join(t.dir!, 'catalog.json');
    const raw = readFileSync(path, 'utf8');
    expect(raw).toContain('"visibilityTimeoutMs":5000');
    // As an older version stored them: an unknown field, one inside rateLimit, a small segmentBytes.
    writeFileSync(
      path,
      raw.replace(
        '"visibilityTimeoutMs":5000',
        '"visibilityTimeoutMs":5000,"bogus":1,"rateLimit":{"messagesPerSecond":500,"burst":3},"segmentBytes":512',
      ),
    );
    const broker = await t.restart(); // close() again is a no-op; then opens the changed directory
    const info = await broker.describeQueue('q');
    expect(info.options.visibilityTimeoutMs).toBe(5000);
    expect('bogus' in info.options).toBe(false);
    expect((await broker.receive('q', { max: 1 }))[0].payload).toBe('kept');
  });

  it('type-checks fifo and contentBasedDedup, bounds segmentBytes and a consumer visibilityTimeoutMs', async () => {
    t = await openTestBroker();
    await expect(t.broker.createQueue('q', { fifo: 'yes' } as unknown as QueueOptions)).rejects.toThrow(
      /fifo is "yes"/,
    );
    await expect(t.broker.createQueue('q', { contentBasedDedup: 1 } as unknown as QueueOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(t.broker.createQueue('q', { segmentBytes: 10 })).rejects.toThrow(/segmentBytes is 10/);
    await t.broker.createQueue('q');
    await expect(t.broker.consume('q', { visibilityTimeoutMs: 0 }, () => undefined)).rejects.toThrow(
      /visibilityTimeoutMs 0/,
    );
    await expect(t.broker.consume('q', { visibilityTimeoutMs: 13 * 3_600_000 }, () => undefined)).rejects.toMatchObject(
      { code: 'INVALID_ARGUMENT' },
    );
  });

  it('delivers a priority above the highest level at the highest level, up to maxPriority; a larger one is refused, not wrapped', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q', { priorities: 3 });
    await t.broker.publish('q', [
      { payload: 'low', priority: 0 },
      { payload: 'huge', priority: 2 ** 31 },
      { payload: 'max', priority: LIMITS.maxPriority },
    ]);
    const got = await t.broker.receive('q', { max: 3 });
    expect(got.map((m) => m.payload)).toEqual(['huge', 'max', 'low']);
    expect(got[1].priority).toBe(LIMITS.maxPriority);
    // The native protocol carries a priority as a u32: 2^32 + 5 would arrive as 5.
    await expect(t.broker.publish('q', { payload: 'over', priority: LIMITS.maxPriority + 6 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect((await t.broker.stats('q')) as { depth: number }).toMatchObject({ depth: 0 });
  });
});
