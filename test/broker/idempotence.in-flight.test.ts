// A publish holding a repeat of another publish still in flight is all or nothing, as a batch is: it
// waits for that original before it stores anything, then stores the repeat itself if the original
// failed, or answers it as a duplicate if the original was stored. It never stores its fresh
// messages and then fails with the original.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MessageInput, PublishResult } from '../../src/broker/index.js';
import { ProducerDedupe } from '../../src/broker/idempotence.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { WharfError } from '../../src/common/index.js';
import { holdNext, openTestBroker, payloads, qstats, settle, type TestBroker } from './queue-helpers.js';

let t: TestBroker | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  await t?.cleanup();
  t = null;
});

const stamped = (sequence: number): MessageInput => ({ producerId: 'p', sequence, payload: `m${sequence}` });

describe('a repeat of a publish still in flight', () => {
  it('whose original fails: the batch stores nothing until then, and then the repeat with its fresh message, each once', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    const endOriginal = holdNext(QueueEngine.prototype, 'appendLevel');
    const original = t.broker.publish('q', [stamped(5)]);
    const retry = t.broker.publish('q', [stamped(5), { payload: 'fresh' }]);
    await settle();
    const depthWhileOriginalInFlight = (await qstats(t, 'q')).depth;
    endOriginal(new WharfError('UNAVAILABLE', 'disk failed'));
    const [o, r] = await Promise.allSettled([original, retry]);
    expect(o).toMatchObject({ status: 'rejected', reason: { code: 'UNAVAILABLE' } });
    const stored = await t.broker.receive('q', { max: 10 });
    expect(payloads(stored)).toEqual(['m5', 'fresh']);
    // The retry stored the repeat itself, in its place in the batch: its result is the stored id, no duplicate.
    expect(r).toEqual({ status: 'fulfilled', value: [{ id: stored[0].id }, { id: stored[1].id }] });
    // Now stored, the sequence is a duplicate of the retry's message.
    expect(await t.broker.publish('q', stamped(5))).toEqual({
      id: stored[0].id,
      duplicate: true,
      repeatedSequence: true,
    });
    expect(depthWhileOriginalInFlight).toBe(0);
  });

  it('whose original is stored: the batch stores nothing until then, and then answers the repeat as a duplicate of it', async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
    const endOriginal = holdNext(QueueEngine.prototype, 'appendLevel');
    const original = t.broker.publish('q', [stamped(5)]);
    const retry = t.broker.publish('q', [stamped(5), { payload: 'fresh' }]);
    await settle();
    const depthWhileOriginalInFlight = (await qstats(t, 'q')).depth;
    endOriginal();
    const [first, again] = await Promise.all([original, retry]);
    const stored = await t.broker.receive('q', { max: 10 });
    expect(payloads(stored)).toEqual(['m5', 'fresh']);
    expect(first).toEqual([{ id: stored[0].id }]);
    expect(again).toEqual([{ id: stored[0].id, duplicate: true, repeatedSequence: true }, { id: stored[1].id }]);
    expect(depthWhileOriginalInFlight).toBe(0);
  });

  it('keeps the batch in order and stores it in one publish, the repeat of a failed original in its place', async () => {
    const table = new ProducerDedupe();
    const calls: unknown[][] = [];
    let fail!: (e: Error) => void;
    const original = table.publish('q', [stamped(1), stamped(2)], false, () => new Promise((_, no) => (fail = no)));
    const batch: MessageInput[] = [{ payload: 'a' }, stamped(2), { payload: 'b' }, stamped(1), stamped(3)];
    const retry = table.publish('q', batch, false, async (fresh) => {
      calls.push(fresh.map((m) => m.payload));
      return fresh.map((m): PublishResult => ({ id: `id-${String(m.payload)}` }));
    });
    await settle();
    expect(calls).toEqual([]);
    fail(new Error('disk failed'));
    await expect(original).rejects.toThrow('disk failed');
    expect(await retry).toEqual(['a', 'm2', 'b', 'm1', 'm3'].map((p) => ({ id: `id-${p}` })));
    expect(calls).toEqual([['a', 'm2', 'b', 'm1', 'm3']]);
  });
});
