// The idempotent-producer table's bounds: per (target, producerId) the oldest results are forgotten
// first past MAX_RESULTS_PER_PRODUCER, and a result stored again keeps its place; a publish waits for
// publishes of its sequences in flight at most MAX_IN_FLIGHT_WAITS times.
import { describe, expect, it } from 'vitest';
import { MAX_PRODUCERS, MAX_RESULTS_PER_PRODUCER, ProducerDedupe } from '../../src/broker/idempotence.js';
import { MAX_IN_FLIGHT_WAITS } from '../../src/broker/in-flight-waits.js';
import type { MessageInput, PublishResult } from '../../src/broker/index.js';

const msg = (sequence: number): MessageInput => ({ producerId: 'p', sequence, payload: sequence });
const stored = (ms: MessageInput[]): PublishResult[] =>
  ms.map((m) => ({ id: `id-${m.sequence}`, partition: 0, offset: m.sequence! }));

/** Publishes through the table; returns which of the sequences it found stored already. */
async function repeats(table: ProducerDedupe, sequences: number[]): Promise<number[]> {
  const rs = await table.publish('t', sequences.map(msg), false, async (fresh) => {
    const out = stored(fresh);
    table.learn('t', fresh, out);
    return out;
  });
  return sequences.filter((_, i) => rs[i].duplicate === true);
}

/** Publishes one message of producerId with sequence through the table, stored as `${producerId}-${sequence}`. */
function publisherTo(table: ProducerDedupe): (producerId: string, sequence: number) => Promise<PublishResult[]> {
  return (producerId, sequence) =>
    table.publish('q', [{ producerId, sequence }], false, async (fresh) => {
      const out = fresh.map(() => ({ id: `${producerId}-${sequence}` }));
      table.learn('q', fresh, out);
      return out;
    });
}

describe('idempotent-producer table limits', () => {
  it(`forgets the oldest results first once a producer has more than ${MAX_RESULTS_PER_PRODUCER} (twice over, across the order compaction)`, async () => {
    const table = new ProducerDedupe();
    const total = 2 * MAX_RESULTS_PER_PRODUCER + 100;
    const all = Array.from({ length: total }, (_, s) => s);
    table.learn('t', all.map(msg), stored(all.map(msg)));
    const oldest = total - MAX_RESULTS_PER_PRODUCER;
    expect(await repeats(table, [0, oldest - 1, oldest, total - 1])).toEqual([oldest, total - 1]);
  });

  it('a result learnt again keeps its place in the forgetting order', async () => {
    const table = new ProducerDedupe();
    table.learn('t', [msg(0)], stored([msg(0)]));
    table.learn('t', [msg(0)], stored([msg(0)]));
    const rest = Array.from({ length: MAX_RESULTS_PER_PRODUCER }, (_, s) => s + 1);
    table.learn('t', rest.map(msg), stored(rest.map(msg)));
    expect(await repeats(table, [0, 1, MAX_RESULTS_PER_PRODUCER])).toEqual([1, MAX_RESULTS_PER_PRODUCER]);
  });

  it(`a publish in flight keeps its claim while ${MAX_PRODUCERS} other producers push its producer out of the table`, async () => {
    const table = new ProducerDedupe();
    let storedCount = 0;
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    const first = table.publish('q', [msg(0)], false, async (fresh) => {
      await gate;
      storedCount += fresh.length;
      return [{ id: 'first' }];
    });
    for (let i = 0; i < MAX_PRODUCERS; i++) {
      await table.publish('q', [{ producerId: `other-${i}`, sequence: 0 }], false, async (fresh) =>
        fresh.map(() => ({ id: `other-${i}` })),
      );
    }
    const repeat = table.publish('q', [msg(0)], false, async (fresh) => {
      storedCount += fresh.length;
      return [{ id: 'stored twice' }];
    });
    openGate();
    expect(await first).toEqual([{ id: 'first' }]);
    expect(await repeat).toEqual([{ id: 'first', duplicate: true, repeatedSequence: true }]);
    expect(storedCount).toBe(1);
  });

  it(`past ${MAX_PRODUCERS} producers, one that has not published since is forgotten: the oldest, publishing again, keeps its results`, async () => {
    const publishAs = publisherTo(new ProducerDedupe());
    for (let i = 0; i < MAX_PRODUCERS; i++) await publishAs(`p${i}`, 0);
    await publishAs('p0', 1); // p0, the oldest, is used again
    await publishAs('newcomer', 0); // the table is full: one producer is forgotten
    expect((await publishAs('p0', 0))[0]).toEqual({ id: 'p0-0', duplicate: true, repeatedSequence: true });
    expect((await publishAs('p2', 0))[0]).toEqual({ id: 'p2-0', duplicate: true, repeatedSequence: true });
    expect((await publishAs('p1', 0))[0]).toEqual({ id: 'p1-0' }); // forgotten: stored again (and p3 goes in its place; p2 published since)
  });

  it('a producer that keeps publishing is never forgotten, however many new producers pass through', async () => {
    const publishAs = publisherTo(new ProducerDedupe());
    let sequence = 0;
    await publishAs('steady', sequence);
    for (let i = 0; i < 3 * MAX_PRODUCERS; i++) {
      await publishAs(`passing-${i}`, 0);
      if (i % (MAX_PRODUCERS / 4) === 0) await publishAs('steady', ++sequence);
    }
    expect((await publishAs('steady', sequence))[0]).toEqual({
      id: `steady-${sequence}`,
      duplicate: true,
      repeatedSequence: true,
    });
    expect((await publishAs('passing-0', 0))[0]).toEqual({ id: 'passing-0-0' }); // long gone: stored again
  });

  it('a refused batch creates no producer state (cannot push real producers out)', async () => {
    const table = new ProducerDedupe();
    await table.publish('q', [msg(7)], false, async () => [{ id: 'kept' }]);
    for (let i = 0; i < MAX_PRODUCERS; i++) {
      await expect(
        table.publish('q', [{ producerId: `bad-${i}`, sequence: -1 }], false, async () => []),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await table.publish('q', [msg(7)], false, async () => [{ id: 'stored twice' }])).toEqual([
      { id: 'kept', duplicate: true, repeatedSequence: true },
    ]);
  });

  it('a repeat waiting on a publish that fails leaves no unhandled rejection when its own batch is then refused', async () => {
    const table = new ProducerDedupe();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      let fail!: (e: Error) => void;
      const first = table.publish('q', [msg(0)], false, () => new Promise((_, reject) => (fail = reject)));
      const firstFailed = expect(first).rejects.toThrow('disk full');
      // A repeat of the in-flight message, in a batch whose publish fails once the original has.
      const second = table.publish('q', [msg(0), msg(1)], false, async () => {
        throw new Error('second batch failed');
      });
      const secondFailed = expect(second).rejects.toThrow('second batch failed');
      fail(new Error('disk full'));
      await firstFailed;
      await secondFailed;
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('sequences below the highest seen are still looked up: a gap filled late is stored once, and a repeat of it is recognised', async () => {
    const table = new ProducerDedupe();
    let storedCount = 0;
    const store = async (fresh: MessageInput[]): Promise<PublishResult[]> => {
      storedCount += fresh.length;
      return fresh.map((m) => ({ id: `id-${m.sequence}` }));
    };
    await table.publish('q', [msg(5)], false, store);
    expect(await table.publish('q', [msg(3)], false, store)).toEqual([{ id: 'id-3' }]);
    expect(await table.publish('q', [msg(3), msg(5), msg(4)], false, store)).toEqual([
      { id: 'id-3', duplicate: true, repeatedSequence: true },
      { id: 'id-5', duplicate: true, repeatedSequence: true },
      { id: 'id-4' },
    ]);
    expect(storedCount).toBe(3);
    // Below a sequence still in flight but never claimed itself: stored; the in-flight one is waited for.
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    const slow = table.publish('q', [msg(10)], false, async (fresh) => {
      await gate;
      return store(fresh);
    });
    const meanwhile = table.publish('q', [msg(9), msg(10)], false, store);
    openGate();
    expect(await slow).toEqual([{ id: 'id-10' }]);
    expect(await meanwhile).toEqual([{ id: 'id-9' }, { id: 'id-10', duplicate: true, repeatedSequence: true }]);
    expect(storedCount).toBe(5);
  });

  it('repeatedSequence marks only a repeat whose original was stored: not one of a dedupId duplicate, nor an exchange publish the table knows by id alone', async () => {
    const table = new ProducerDedupe();
    // The original is itself a duplicate (of a dedupId): a repeat in the same batch and one waiting
    // for it in flight are that duplicate, for that reason alone.
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    const original = table.publish('q', [msg(0), msg(0)], false, async () => {
      await gate;
      return [{ id: 'earlier', duplicate: true }];
    });
    const waiting = table.publish('q', [msg(0)], false, async () => [{ id: 'never' }]);
    openGate();
    expect(await original).toEqual([
      { id: 'earlier', duplicate: true },
      { id: 'earlier', duplicate: true },
    ]);
    expect(await waiting).toEqual([{ id: 'earlier', duplicate: true }]);
    // An exchange publish, repeated once stored: the table holds its id, not how many targets it
    // reached, so the repeat is a plain duplicate (a client must not pass it off as the original).
    const routedOnce = await table.publish('ex', [msg(1)], true, async () => [{ id: 'm1', routed: 2 }]);
    expect(routedOnce).toEqual([{ id: 'm1', routed: 2 }]);
    expect(await table.publish('ex', [msg(1)], true, async () => [{ id: 'never' }])).toEqual([
      { id: 'm1', duplicate: true },
    ]);
    // The same repeat while the original is still in flight has its whole result.
    let openExchange!: () => void;
    const exchangeGate = new Promise<void>((r) => (openExchange = r));
    const inFlight = table.publish('ex', [msg(2)], true, async () => {
      await exchangeGate;
      return [{ id: 'm2', routed: 3 }];
    });
    const repeat = table.publish('ex', [msg(2)], true, async () => [{ id: 'never' }]);
    openExchange();
    await inFlight;
    expect(await repeat).toEqual([{ id: 'm2', routed: 3, duplicate: true, repeatedSequence: true }]);
  });

  it(`a publish waits for other publishes of its sequences in flight at most ${MAX_IN_FLIGHT_WAITS} times, then fails with CONFLICT having stored nothing`, async () => {
    const table = new ProducerDedupe();
    const storedPayloads: unknown[] = [];
    let fail!: (e: Error) => void;
    const original = table.publish('q', [msg(0)], false, () => new Promise((_, reject) => (fail = reject)));
    // Retries of the original whose stores fail: each one claims sequence 0 in turn (the first of
    // them waiting goes on first), and every later one, the last publish included, waits for it again.
    const failing = Array.from({ length: MAX_IN_FLIGHT_WAITS }, () =>
      table.publish('q', [msg(0)], false, async () => {
        throw new Error('store failed');
      }),
    );
    const last = table.publish('q', [msg(0), { payload: 'fresh' }], false, async (fresh) => {
      storedPayloads.push(...fresh.map((m) => m.payload));
      return fresh.map(() => ({ id: 'stored' }));
    });
    fail(new Error('disk full'));
    await expect(original).rejects.toThrow('disk full');
    // Each retry waited at most the limit's number of times (the last of them exactly that many) and failed itself.
    for (const f of failing) await expect(f).rejects.toThrow('store failed');
    await expect(last).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(storedPayloads).toEqual([]);
    // Nothing claimed is left behind: the sequence is stored by the next publish.
    expect(await repeats(table, [0])).toEqual([]);
  });
});
