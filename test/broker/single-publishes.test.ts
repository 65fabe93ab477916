// Single publishes made in one tick are stored as one batch (src/broker/single-publishes.ts), with
// nothing the caller can see changed: each call's own result or error, call order, the message as
// it was at the call.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker, type MessageInput, type PublishResult } from '../../src/broker/index.js';
import { SinglePublishes } from '../../src/broker/single-publishes.js';
import { WharfError } from '../../src/common/index.js';
import { openTestBroker } from './queue-helpers.js';
import { waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function memBroker(): Promise<Broker> {
  const b = await Broker.open({ inMemory: true });
  cleanups.push(() => b.close());
  return b;
}

const payloadOf = (m: MessageInput): unknown =>
  m.payload instanceof Uint8Array ? JSON.parse(Buffer.from(m.payload).toString('utf8')) : m.payload;

/** A broker stand-in: records each batch it is given and answers when told to. */
class FakeBroker {
  readonly batches: Array<{ name: string; payloads: unknown[] }> = [];
  private readonly answers: Array<{
    messages: MessageInput[];
    resolve: (r: PublishResult[]) => void;
    reject: (e: unknown) => void;
  }> = [];
  /** Payloads this stand-in refuses, with the code it refuses them with. */
  refuse = new Map<unknown, string>();

  readonly publish = (name: string, messages: MessageInput[]): Promise<PublishResult[]> => {
    this.batches.push({ name, payloads: messages.map(payloadOf) });
    return new Promise((resolve, reject) => this.answers.push({ messages, resolve, reject }));
  };

  /** Answers the oldest batch: refused if any of its payloads is refused, else one id per message. */
  answerNext(): void {
    const a = this.answers.shift();
    if (a === undefined) throw new Error('no batch waits for an answer');
    const code = a.messages.map((m) => this.refuse.get(payloadOf(m))).find((c) => c !== undefined);
    if (code !== undefined) a.reject(new WharfError(code as 'INVALID_ARGUMENT', 'refused'));
    else a.resolve(a.messages.map((m) => ({ id: `id-${String(payloadOf(m))}` })));
  }

  get waiting(): number {
    return this.answers.length;
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('single publishes gathered into batches', () => {
  it('publishes made in one tick go to the broker as one batch; each call resolves with its own result', async () => {
    const fake = new FakeBroker();
    const singles = new SinglePublishes(fake.publish);
    const results = [1, 2, 3].map((n) => singles.single('q', { payload: n }));
    expect(fake.batches).toEqual([]); // not before the end of the tick
    await tick();
    expect(fake.batches).toEqual([{ name: 'q', payloads: [1, 2, 3] }]);
    fake.answerNext();
    expect(await Promise.all(results)).toEqual([{ id: 'id-1' }, { id: 'id-2' }, { id: 'id-3' }]);
  });

  it('a merged batch refused for one message is published again message by message: only that one fails, and later publishes wait behind', async () => {
    const fake = new FakeBroker();
    fake.refuse.set(2, 'INVALID_ARGUMENT');
    const singles = new SinglePublishes(fake.publish);
    const first = Promise.allSettled([1, 2, 3].map((n) => singles.single('q', { payload: n })));
    await tick();
    const later = singles.single('q', { payload: 4 });
    const laterMany = singles.many('q', [{ payload: 5 }]);
    await tick();
    expect(fake.batches.map((b) => b.payloads)).toEqual([[1, 2, 3]]); // 4 and 5 wait behind the merged batch
    fake.answerNext();
    await tick();
    expect(fake.batches.map((b) => b.payloads)).toEqual([[1, 2, 3], [1], [2], [3]]);
    for (let i = 0; i < 3; i++) fake.answerNext();
    const settled = await first;
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'INVALID_ARGUMENT' });
    await tick();
    // Then, in call order, what waited.
    expect(fake.batches.map((b) => b.payloads).slice(4)).toEqual([[4], [5]]);
    fake.answerNext();
    fake.answerNext();
    expect(await later).toEqual({ id: 'id-4' });
    expect(await laterMany).toEqual([{ id: 'id-5' }]);
  });

  it('a merged batch refused as full is published again one by one: a full queue takes what fits', async () => {
    const fake = new FakeBroker();
    fake.refuse.set(2, 'QUEUE_FULL');
    const singles = new SinglePublishes(fake.publish);
    const calls = Promise.allSettled([1, 2].map((n) => singles.single('q', { payload: n })));
    await tick();
    fake.answerNext();
    await tick();
    while (fake.waiting > 0) fake.answerNext();
    expect((await calls).map((s) => s.status)).toEqual(['fulfilled', 'rejected']);
    expect(fake.batches.map((b) => b.payloads)).toEqual([[1, 2], [1], [2]]);
  });

  it('a publish of an array goes after the singles called before it, at once', async () => {
    const fake = new FakeBroker();
    const singles = new SinglePublishes(fake.publish);
    const single = singles.single('q', { payload: 1 });
    const many = singles.many('q', [{ payload: 2 }, { payload: 3 }]);
    expect(fake.batches.map((b) => b.payloads)).toEqual([[1], [2, 3]]);
    fake.answerNext();
    fake.answerNext();
    expect(await single).toEqual({ id: 'id-1' });
    expect(await many).toHaveLength(2);
  });

  it('sendAll hands what is gathering to the broker at once, and waits only for what is held behind a merged batch', async () => {
    const fake = new FakeBroker();
    const singles = new SinglePublishes(fake.publish);
    void singles.single('a', { payload: 1 });
    expect(singles.sendAll()).toBeNull();
    expect(fake.batches).toHaveLength(1);
    void singles.single('b', { payload: 1 });
    void singles.single('b', { payload: 2 });
    await tick(); // a merged batch to b, unanswered
    void singles.single('b', { payload: 3 });
    let handed = false;
    void singles.sendAll()!.then(() => (handed = true));
    await tick();
    expect(handed).toBe(false);
    fake.answerNext(); // a
    fake.answerNext(); // b's merged batch: what waited behind it goes now
    await tick();
    expect(handed).toBe(true);
    expect(fake.batches.map((b) => b.payloads).at(-1)).toEqual([3]);
  });
});

describe('single publishes through the broker', () => {
  it('stores each message as it was at the call: the caller may reuse its bytes, headers and objects at once', async () => {
    const b = await memBroker();
    await b.createQueue('q');
    await b.createTopic('t');
    for (const name of ['q', 't']) {
      const bytes = Buffer.from('first');
      const headers: Record<string, string> = { h: 'first' };
      const json = { n: 'first' };
      const calls = [b.publish(name, { payload: bytes, headers }), b.publish(name, { payload: json })];
      bytes.write('xxxxx');
      headers.h = 'changed';
      json.n = 'changed';
      await Promise.all(calls);
    }
    const fromQueue = await b.receive('q', { max: 10 });
    expect(Buffer.from(fromQueue[0].payload as Uint8Array).toString()).toBe('first');
    expect(fromQueue[0].headers).toEqual({ h: 'first' });
    expect(fromQueue[1].payload).toEqual({ n: 'first' });
    const fromTopic: unknown[] = [];
    const sub = await b.subscribe('t', { from: 'earliest' }, (m) => void fromTopic.push(m.payload));
    await waitFor(() => fromTopic.length >= 2, 'both topic messages');
    await sub.close();
    expect(Buffer.from(fromTopic[0] as Uint8Array).toString()).toBe('first');
    expect(fromTopic[1]).toEqual({ n: 'first' });
  });

  it('concurrent publishes keep call order, and a bad one fails alone', async () => {
    const b = await memBroker();
    await b.createQueue('q');
    const calls = Array.from({ length: 50 }, (_, i) =>
      b.publish('q', i === 20 ? { payload: 1, priority: -1 } : { payload: i }),
    );
    const settled = await Promise.allSettled(calls);
    expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(1);
    expect((settled[20] as PromiseRejectedResult).reason).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const got = (await b.receive('q', { max: 100 })).map((m) => m.payload);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i).filter((i) => i !== 20));
  });

  it('concurrent publishes to a full queue store what fits, as one by one would', async () => {
    const b = await memBroker();
    await b.createQueue('q', { maxLength: 3, overflow: 'reject' });
    const settled = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => b.publish('q', { payload: n })));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect((settled[4] as PromiseRejectedResult).reason).toMatchObject({ code: 'QUEUE_FULL' });
    expect((await b.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([1, 2, 3]);
  });

  it("publishes to a queue with overflow 'block' go one by one: each takes the room as it frees", async () => {
    const b = await memBroker();
    await b.createQueue('q', { maxLength: 2, overflow: 'block', blockTimeoutMs: 5_000 });
    const calls = [1, 2, 3, 4].map((n) => b.publish('q', { payload: n }));
    const got: unknown[] = [];
    while (got.length < 4) {
      for (const m of await b.receive('q', { max: 1, waitMs: 1_000 })) {
        got.push(m.payload);
        await m.ack();
      }
    }
    await Promise.all(calls);
    expect(got).toEqual([1, 2, 3, 4]);
  });

  it('a publish through an exchange, a transaction or a delete made after single publishes in the same tick comes after them', async () => {
    const b = await memBroker();
    await b.createQueue('q');
    await b.createExchange('x', { type: 'fanout' });
    await b.bind('x', { queue: 'q' });
    const calls = [
      b.publish('q', { payload: 'a' }),
      b.publish('x', { payload: 'b' }),
      b.publish('q', { payload: 'c' }),
      b.transaction(async (tx) => {
        tx.publish('q', { payload: 'd' });
      }),
    ];
    await Promise.all(calls);
    expect((await b.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['a', 'b', 'c', 'd']);
    await b.createQueue('gone');
    const before = b.publish('gone', { payload: 1 });
    await b.deleteQueue('gone');
    await expect(before).resolves.toMatchObject({ id: expect.any(String) });
  });

  it('a refused batch stores nothing twice: a dedupId goes alone, and stamped and unstamped messages are never merged', async () => {
    const b = await memBroker();
    await b.createTopic('t', { dedupWindowMs: 60_000 });
    // The original (an explicit partition the topic does not have) fails while its repeat waits for it.
    const original = b.publish('t', [{ producerId: 'p', sequence: 1, partition: 99 }]);
    const calls = [
      b.publish('t', { producerId: 'p', sequence: 1, payload: 'repeat' }),
      b.publish('t', { payload: 'b' }),
      b.publish('t', { dedupId: 'k', payload: 'c' }),
      b.publish('t', { dedupId: 'k', payload: 'c-again' }),
    ];
    await Promise.allSettled([original, ...calls]);
    const stored: unknown[] = [];
    const sub = await b.subscribe('t', { from: 'earliest' }, (m) => void stored.push(m.payload));
    await waitFor(() => stored.length >= 3, 'the three stored messages');
    await new Promise((r) => setTimeout(r, 20)); // and any stored twice
    await sub.close();
    expect(stored.filter((p) => p === 'repeat')).toHaveLength(1);
    expect(stored.filter((p) => p === 'b')).toHaveLength(1);
    expect(stored.filter((p) => p === 'c' || p === 'c-again')).toEqual(['c']);
  });

  it("a queue with overflow 'drop-lowest-priority' weighs each single publish alone, as before", async () => {
    const b = await memBroker();
    await b.createQueue('p', { priorities: 3, maxLength: 2, overflow: 'drop-lowest-priority' });
    await b.publish('p', { payload: 'old-p2', priority: 2 });
    await b.publish('p', { payload: 'old-p0', priority: 0 });
    const [high, low] = await Promise.all([
      b.publish('p', { payload: 'new-p2', priority: 2 }),
      b.publish('p', { payload: 'new-p0', priority: 0 }),
    ]);
    expect(high.overflow).toBeUndefined();
    expect(low.overflow).toBe('dropped');
    expect((await b.receive('p', { max: 10 })).map((m) => m.payload).sort()).toEqual(['new-p2', 'old-p2']);
  });

  it('publishes made before close() are stored', async () => {
    const t = await openTestBroker({ disk: true });
    cleanups.push(() => t.cleanup());
    await t.broker.createQueue('q');
    const calls = [1, 2, 3].map((n) => t.broker.publish('q', { payload: n }));
    const again = await t.restart(); // close() right after the calls, then open again
    expect((await Promise.allSettled(calls)).map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect((await again.receive('q', { max: 10 })).map((m) => m.payload)).toEqual([1, 2, 3]);
  });
});
