// The idempotent-producer table's bounds: per (target, producerId) the oldest results are forgotten
// first past MAX_RESULTS_PER_PRODUCER, and a result stored again keeps its place.
import { describe, expect, it } from 'vitest';
import { MAX_RESULTS_PER_PRODUCER, ProducerDedupe } from '../../src/broker/idempotence.js';
import type { MessageInput, PublishResult } from '../../src/broker/index.js';

const msg = (sequence: number): MessageInput => ({ producerId: 'p', sequence, payload: sequence });
const stored = (ms: MessageInput[]): PublishResult[] => ms.map((m) => ({ id: `id-${m.sequence}`, partition: 0, offset: m.sequence! }));

/** Publishes through the table; returns which of the sequences it found stored already. */
async function repeats(table: ProducerDedupe, sequences: number[]): Promise<number[]> {
  const rs = await table.publish('t', sequences.map(msg), false, async (fresh) => {
    const out = stored(fresh);
    table.learn('t', fresh, out);
    return out;
  });
  return sequences.filter((_, i) => rs[i].duplicate === true);
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
});
