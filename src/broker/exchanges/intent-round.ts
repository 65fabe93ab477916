// Applies one committed round of the intent journal. The round's writes are grouped by target, in
// submission order; a target that treats a batch exactly like the same messages written one call
// after another (no overflow limit or rate limit acting per call) gets them all in one write — one
// record batch and one fsync for every publish of the round — and the others get one write per
// intent, concurrently, as before rounds existed. Acks and offset commits are applied per intent.
import { LIMITS } from '../../common/index.js';
import type { MessageInput } from '../types.js';
import type { Intent, IntentApplier, IntentOp, WriteOp } from './intent-types.js';

/** Whether writes of several intents to this target may be merged into one write call. */
export type MergePolicy = (target: { kind: WriteOp['kind']; name: string }) => boolean;

/** Why an intent of the round failed; null when every op of it applied. */
export type RoundOutcome = { error: unknown } | null;

interface TargetWrites {
  kind: WriteOp['kind'];
  name: string;
  parts: Array<{ intent: number; messages: MessageInput[] }>;
}

/** Applies every op of every intent; never rejects: the outcome per intent, in order. */
export async function applyRound(
  intents: Intent[],
  apply: IntentApplier,
  mergeable: MergePolicy,
): Promise<RoundOutcome[]> {
  const outcomes: RoundOutcome[] = intents.map(() => null);
  const fail = (intent: number, error: unknown): void => {
    outcomes[intent] ??= { error };
  };
  const targets = new Map<string, TargetWrites>();
  const others: Array<{ intent: number; op: IntentOp }> = [];
  intents.forEach((intent, i) => {
    for (const op of intent.ops) {
      if (op.op !== 'write') {
        others.push({ intent: i, op });
        continue;
      }
      const key = `${op.kind}:${op.name}`;
      let t = targets.get(key);
      if (t === undefined) targets.set(key, (t = { kind: op.kind, name: op.name, parts: [] }));
      t.parts.push({ intent: i, messages: op.messages });
    }
  });
  const tasks = [...targets.values()].map((t) => writeTarget(t, apply, mergeable, fail));
  for (const { intent, op } of others) tasks.push(apply(op, false).then(noop, (err: unknown) => fail(intent, err)));
  await Promise.all(tasks);
  return outcomes;
}

async function writeTarget(
  t: TargetWrites,
  apply: IntentApplier,
  mergeable: MergePolicy,
  fail: (intent: number, error: unknown) => void,
): Promise<void> {
  const write = (messages: MessageInput[]): Promise<unknown> =>
    apply({ op: 'write', kind: t.kind, name: t.name, messages }, false);
  if (t.parts.length === 1 || !mergeable(t)) {
    await Promise.all(t.parts.map((p) => write(p.messages).then(noop, (err: unknown) => fail(p.intent, err))));
    return;
  }
  for (const chunk of chunks(t.parts, LIMITS.maxBatchMessages)) {
    try {
      await write(chunk.flatMap((p) => p.messages));
    } catch {
      // One refused message must not fail the other intents of the round: each part is written
      // alone, in order (whatever the merged write did store is recognised by its dedupId).
      for (const p of chunk) await write(p.messages).then(noop, (err: unknown) => fail(p.intent, err));
    }
  }
}

/** Consecutive parts holding at most maxMessages messages each (a part is never split). */
function chunks<P extends { messages: unknown[] }>(parts: P[], maxMessages: number): P[][] {
  const out: P[][] = [];
  let current: P[] = [];
  let count = 0;
  for (const p of parts) {
    if (current.length > 0 && count + p.messages.length > maxMessages) {
      out.push(current);
      current = [];
      count = 0;
    }
    current.push(p);
    count += p.messages.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function noop(): void {}
