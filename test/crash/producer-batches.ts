// Shared by producer.crash.test.ts and its child: the idempotent batches both sides send, so the
// parent can re-send exactly what the killed child tried.
import type { MessageInput } from '../../src/broker/index.js';

export const PRODUCER_ID = 'crash-producer';
/** Publish targets: a 3-partition topic, a queue, and a fanout exchange bound to a queue and a topic. */
export const TARGETS = ['t', 'q', 'ex'] as const;

/** Messages with sequences from..to (inclusive) for target; the payload names both. */
export function batchOf(target: string, from: number, to: number): MessageInput[] {
  const out: MessageInput[] = [];
  for (let s = from; s <= to; s++)
    out.push({ producerId: PRODUCER_ID, sequence: s, key: `k${s % 7}`, payload: { target, s } });
  return out;
}
