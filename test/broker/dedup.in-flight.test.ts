// A publish holding a dedupId repeat of another publish still in flight (to a queue or a topic) is
// all or nothing, as a batch is: it waits for that original before it stores anything, then stores
// the repeat with the batch, in its place, if the original failed, or answers it as a duplicate if
// the original was stored. It never stores its fresh messages and then fails with the repeat.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { MessageInput, PublishResult, QueueOptions, TopicMessage, TopicStats } from '../../src/broker/index.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { MAX_IN_FLIGHT_WAITS } from '../../src/broker/in-flight-waits.js';
import { TopicDedupIndex } from '../../src/broker/topics/dedup-index.js';
import { TopicPartition } from '../../src/broker/topics/topic.js';
import { WharfError } from '../../src/common/index.js';
import { holdNext, openTestBroker, payloads, qstats, settle, type TestBroker } from './queue-helpers.js';
import { waitFor } from './topics-helpers.js';

let t: TestBroker | null = null;
let broker: Broker | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  await t?.cleanup();
  t = null;
  await broker?.close();
  broker = null;
});

const repeat: MessageInput = { dedupId: 'k', payload: 'a' };
const fresh: MessageInput = { payload: 'fresh' };
const diskFailed = (): WharfError => new WharfError('UNAVAILABLE', 'disk failed');

/** Fails the queue's next append with `failure`, storing nothing. */
function failNextQueueAppend(failure: Error): void {
  vi.spyOn(QueueEngine.prototype, 'appendLevel').mockImplementationOnce(async () => {
    throw failure;
  });
}

/**
 * Opens the test broker with queue 'q' (`options`), publishes `first` with its append held and then
 * `second` behind it, and reads the queue's depth while `first` is in flight.
 */
async function queueRepeatBehindHeld(first: MessageInput[], second: MessageInput[], options: QueueOptions = {}) {
  const opened = (t = await openTestBroker());
  await opened.broker.createQueue('q', options);
  const endOriginal = holdNext(QueueEngine.prototype, 'appendLevel');
  const original = opened.broker.publish('q', first);
  const retry = opened.broker.publish('q', second);
  await settle();
  const depthWhileOriginalInFlight = (await qstats(opened, 'q')).depth;
  return { t: opened, endOriginal, original, retry, depthWhileOriginalInFlight };
}

describe('a queue publish holding a dedupId repeat of a publish still in flight', () => {
  it('whose original fails: stores nothing until then, and then the repeat with its fresh message, each once, in order', async () => {
    const { t, endOriginal, original, retry, depthWhileOriginalInFlight } = await queueRepeatBehindHeld(
      [repeat],
      [repeat, fresh],
    );
    endOriginal(diskFailed());
    const [o, r] = await Promise.allSettled([original, retry]);
    expect(o).toMatchObject({ status: 'rejected', reason: { code: 'UNAVAILABLE' } });
    const stored = await t.broker.receive('q', { max: 10 });
    expect(payloads(stored)).toEqual(['a', 'fresh']);
    // The retry stored the repeat itself, in its place in the batch: its result is the stored id, no duplicate.
    expect(r).toEqual({ status: 'fulfilled', value: [{ id: stored[0].id }, { id: stored[1].id }] });
    // Now stored, the dedupId is a duplicate of the retry's message.
    expect(await t.broker.publish('q', repeat)).toEqual({ id: stored[0].id, duplicate: true });
    expect(depthWhileOriginalInFlight).toBe(0);
  });

  it('whose original fails and whose own store then fails: rejects having stored nothing, so publishing it again stores each once', async () => {
    const { t, endOriginal, original, retry } = await queueRepeatBehindHeld([repeat], [repeat, fresh]);
    endOriginal(diskFailed());
    failNextQueueAppend(diskFailed()); // the disk fails once more, for the next publish that stores
    const [o, r] = await Promise.allSettled([original, retry]);
    expect(o.status).toBe('rejected');
    expect(r).toMatchObject({ status: 'rejected', reason: { code: 'UNAVAILABLE' } });
    expect((await qstats(t, 'q')).depth).toBe(0);
    // A caller publishes again what failed: had the retry stored its fresh message and then failed
    // with the repeat, that message would now be stored twice.
    const again = await t.broker.publish('q', [repeat, fresh]);
    const stored = await t.broker.receive('q', { max: 10 });
    expect(payloads(stored)).toEqual(['a', 'fresh']);
    expect(again).toEqual([{ id: stored[0].id }, { id: stored[1].id }]);
  });

  it('whose original is stored: stores nothing until then, and then answers the repeat as a duplicate of it', async () => {
    const { t, endOriginal, original, retry, depthWhileOriginalInFlight } = await queueRepeatBehindHeld(
      [repeat],
      [repeat, fresh],
    );
    endOriginal();
    const [first, again] = await Promise.all([original, retry]);
    const stored = await t.broker.receive('q', { max: 10 });
    expect(payloads(stored)).toEqual(['a', 'fresh']);
    expect(first).toEqual([{ id: stored[0].id }]);
    expect(again).toEqual([{ id: stored[0].id, duplicate: true }, { id: stored[1].id }]);
    expect(depthWhileOriginalInFlight).toBe(0);
  });

  it('content-based dedup: a repeat of a payload being stored waits for it the same way', async () => {
    const { t, endOriginal, original, retry, depthWhileOriginalInFlight } = await queueRepeatBehindHeld(
      [{ payload: 'a' }],
      [{ payload: 'a' }, fresh],
      { contentBasedDedup: true },
    );
    endOriginal(diskFailed());
    const [o, r] = await Promise.allSettled([original, retry]);
    expect(o.status).toBe('rejected');
    const stored = await t.broker.receive('q', { max: 10 });
    expect(payloads(stored)).toEqual(['a', 'fresh']);
    expect(r).toEqual({ status: 'fulfilled', value: [{ id: stored[0].id }, { id: stored[1].id }] });
    expect(depthWhileOriginalInFlight).toBe(0);
  });

  it(`waits for other publishes of its dedupIds at most ${MAX_IN_FLIGHT_WAITS} times, then fails with CONFLICT having stored nothing`, async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    const endOriginal = holdNext(QueueEngine.prototype, 'appendLevel');
    const original = t.broker.publish('q', [repeat]);
    // Repeats of the original whose stores fail: each one claims the dedupId in turn (the first of
    // them waiting goes on first), and every later one, the last publish included, waits for it again.
    const failing = Array.from({ length: MAX_IN_FLIGHT_WAITS }, () => t!.broker.publish('q', [repeat]));
    const last = t.broker.publish('q', [repeat, fresh]);
    await settle();
    for (let k = 0; k < MAX_IN_FLIGHT_WAITS; k++) failNextQueueAppend(diskFailed());
    endOriginal(diskFailed());
    await expect(original).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    for (const f of failing) await expect(f).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(last).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await qstats(t, 'q')).depth).toBe(0);
    // Nothing claimed is left behind: the dedupId is stored by the next publish.
    await t.broker.publish('q', [repeat, fresh]);
    expect(payloads(await t.broker.receive('q', { max: 10 }))).toEqual(['a', 'fresh']);
  });
});

/** The payloads of the topic's first `count` messages, in offset order (partition 0). */
async function topicPayloads(b: Broker, name: string, count: number): Promise<unknown[]> {
  const got: TopicMessage[] = [];
  const sub = await b.subscribe(name, { from: 'earliest' }, (m) => void got.push(m));
  await waitFor(() => got.length >= count, `${count} messages of ${name}`);
  await sub.close();
  return got.sort((x, y) => x.offset - y.offset).map((m) => m.payload);
}

describe('a topic publish holding a dedupId repeat of a publish still in flight', () => {
  const messagesOf = async (b: Broker, name: string): Promise<number> => ((await b.stats(name)) as TopicStats).messages;

  /** Opens a broker with topic 'd', publishes `repeat` with its append held and a repeat of it with `fresh` behind it. */
  async function topicRepeatBehindHeld() {
    const b = (broker = await Broker.open({ inMemory: true }));
    await b.createTopic('d', { dedupWindowMs: 60_000 });
    const endOriginal = holdNext(TopicPartition.prototype, 'append');
    const original = b.publish('d', [repeat]);
    const retry = b.publish('d', [repeat, fresh]);
    await settle();
    const messagesWhileOriginalInFlight = await messagesOf(b, 'd');
    return { b, endOriginal, original, retry, messagesWhileOriginalInFlight };
  }

  it('whose original fails: stores nothing until then, and then the repeat with its fresh message, each once, in order', async () => {
    const { b, endOriginal, original, retry, messagesWhileOriginalInFlight } = await topicRepeatBehindHeld();
    endOriginal(diskFailed());
    const [o, r] = await Promise.allSettled([original, retry]);
    expect(o).toMatchObject({ status: 'rejected', reason: { code: 'UNAVAILABLE' } });
    expect(r).toMatchObject({
      status: 'fulfilled',
      value: [
        { partition: 0, offset: 0 },
        { partition: 0, offset: 1 },
      ],
    });
    expect(r.status === 'fulfilled' && r.value.some((x) => x.duplicate)).toBe(false);
    expect(await messagesOf(b, 'd')).toBe(2);
    expect(await topicPayloads(b, 'd', 2)).toEqual(['a', 'fresh']);
    expect(await b.publish('d', repeat)).toMatchObject({ offset: 0, duplicate: true });
    expect(messagesWhileOriginalInFlight).toBe(0);
  });

  it('whose original is stored: stores nothing until then, and then answers the repeat as a duplicate of it', async () => {
    const { b, endOriginal, original, retry, messagesWhileOriginalInFlight } = await topicRepeatBehindHeld();
    endOriginal();
    const [first, again] = await Promise.all([original, retry]);
    expect(first).toMatchObject([{ partition: 0, offset: 0 }]);
    expect(again).toEqual([{ ...first[0], duplicate: true }, expect.objectContaining({ partition: 0, offset: 1 })]);
    expect(await messagesOf(b, 'd')).toBe(2);
    expect(await topicPayloads(b, 'd', 2)).toEqual(['a', 'fresh']);
    expect(messagesWhileOriginalInFlight).toBe(0);
  });

  it('whose original fails: the batch goes to the topic in one publish, in order, the repeat in its place', async () => {
    const index = new TopicDedupIndex(60_000);
    const calls: unknown[][] = [];
    let fail!: (e: Error) => void;
    const original = index.publish([repeat], 0, () => new Promise((_, no) => (fail = no)));
    const batch: MessageInput[] = [{ payload: 'x' }, repeat, { payload: 'y' }, repeat, { dedupId: 'z', payload: 'z' }];
    const retry = index.publish(batch, 0, async (f) => {
      calls.push(f.map((m) => m.payload));
      return f.map((m, offset): PublishResult => ({ id: `id-${String(m.payload)}`, partition: 0, offset }));
    });
    await settle();
    expect(calls).toEqual([]);
    fail(new Error('disk failed'));
    await expect(original).rejects.toThrow('disk failed');
    expect(await retry).toEqual([
      { id: 'id-x', partition: 0, offset: 0 },
      { id: 'id-a', partition: 0, offset: 1 },
      { id: 'id-y', partition: 0, offset: 2 },
      { id: 'id-a', partition: 0, offset: 1, duplicate: true }, // repeats the batch's own first 'k'
      { id: 'id-z', partition: 0, offset: 3 },
    ]);
    expect(calls).toEqual([['x', 'a', 'y', 'z']]);
  });

  it(`waits for other publishes of its dedupIds at most ${MAX_IN_FLIGHT_WAITS} times, then fails with CONFLICT having stored nothing`, async () => {
    const index = new TopicDedupIndex(60_000);
    const storedPayloads: unknown[] = [];
    let fail!: (e: Error) => void;
    const original = index.publish([repeat], 0, () => new Promise((_, no) => (fail = no)));
    const failing = Array.from({ length: MAX_IN_FLIGHT_WAITS }, () =>
      index.publish([repeat], 0, async () => {
        throw new Error('store failed');
      }),
    );
    const last = index.publish([repeat, fresh], 0, async (f) => {
      storedPayloads.push(...f.map((m) => m.payload));
      return f.map((_, offset) => ({ id: 'stored', partition: 0, offset }));
    });
    fail(new Error('disk failed'));
    await expect(original).rejects.toThrow('disk failed');
    for (const f of failing) await expect(f).rejects.toThrow('store failed');
    await expect(last).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(storedPayloads).toEqual([]);
    // Nothing claimed is left behind: the dedupId is stored by the next publish.
    expect(await index.publish([repeat], 0, async () => [{ id: 'now', partition: 0, offset: 0 }])).toEqual([
      { id: 'now', partition: 0, offset: 0 },
    ]);
  });
});
