// Applies one committed round of the intent journal. The round's writes are grouped by target, in
// submission order; a target that treats a batch exactly like the same messages written one call
// after another (no overflow limit or rate limit acting per call) gets them all in one write — one
// record batch and one fsync for every publish of the round — and the others get one write per
// intent, concurrently, as before rounds existed. Acks and offset commits are applied per intent.
import { LIMITS, assert } from '../../common/index.js';
import type { MessageInput, PublishResult } from '../types.js';
import type { Intent, IntentApplier, IntentOp, IntentResults, WriteOp } from './intent-types.js';

/** Whether writes of several intents to this target may be merged into one write call. */
export type MergePolicy = (target: { kind: WriteOp['kind']; name: string }) => boolean;

/** Why an intent of the round failed, or what its targets said when every op of it applied. */
export type RoundOutcome = { error: unknown } | { results: IntentResults };

interface TargetWrites {
  kind: WriteOp['kind'];
  name: string;
  /** op: the write's index in its intent's ops. */
  parts: Array<{ intent: number; op: number; messages: MessageInput[] }>;
}

/** Where applying a round puts each op's results and each intent's first failure. */
interface RoundSink {
  fail(intent: number, error: unknown): void;
  done(intent: number, op: number, results: PublishResult[] | void): void;
}

/** Applies every op of every intent; never rejects: the outcome per intent, in order. */
export async function applyRound(
  intents: Intent[],
  apply: IntentApplier,
  mergeable: MergePolicy,
): Promise<RoundOutcome[]> {
  const failures: Array<{ error: unknown } | null> = intents.map(() => null);
  const results: IntentResults[] = intents.map((intent) => intent.ops.map(() => null));
  const sink: RoundSink = {
    fail: (intent, error) => {
      failures[intent] ??= { error };
    },
    done: (intent, op, r) => {
      results[intent][op] = r ?? null;
    },
  };
  const targets = new Map<string, TargetWrites>();
  const others: Array<{ intent: number; op: IntentOp }> = [];
  intents.forEach((intent, i) => {
    intent.ops.forEach((op, k) => {
      if (op.op !== 'write') {
        others.push({ intent: i, op });
        return;
      }
      const key = `${op.kind}:${op.name}`;
      let t = targets.get(key);
      if (t === undefined) targets.set(key, (t = { kind: op.kind, name: op.name, parts: [] }));
      t.parts.push({ intent: i, op: k, messages: op.messages });
    });
  });
  const tasks = [...targets.values()].map((t) => writeTarget(t, apply, mergeable, sink));
  for (const { intent, op } of others)
    tasks.push(apply(op, false).then(noop, (err: unknown) => sink.fail(intent, err)));
  await Promise.all(tasks);
  return intents.map((_, i) => failures[i] ?? { results: results[i] });
}

async function writeTarget(
  t: TargetWrites,
  apply: IntentApplier,
  mergeable: MergePolicy,
  sink: RoundSink,
): Promise<void> {
  const write = (messages: MessageInput[]): Promise<PublishResult[] | void> =>
    apply({ op: 'write', kind: t.kind, name: t.name, messages }, false);
  const writePart = (p: TargetWrites['parts'][number]): Promise<void> =>
    write(p.messages).then(
      (r) => sink.done(p.intent, p.op, r),
      (err: unknown) => sink.fail(p.intent, err),
    );
  if (t.parts.length === 1 || !mergeable(t)) {
    await Promise.all(t.parts.map(writePart));
    return;
  }
  for (const chunk of chunks(t.parts, LIMITS.maxBatchMessages)) {
    let merged: PublishResult[] | void;
    try {
      merged = await write(chunk.flatMap((p) => p.messages));
    } catch {
      // One refused message must not fail the other intents of the round: each part is written
      // alone, in order (whatever the merged write did store is recognised by its dedupId).
      for (const p of chunk) await writePart(p);
      continue;
    }
    // One result per message, in order: each intent gets the slice of its own messages.
    const count = chunk.reduce((n, p) => n + p.messages.length, 0);
    assert(merged === undefined || merged.length === count, 'a merged write has one result per message');
    let at = 0;
    for (const p of chunk) {
      sink.done(p.intent, p.op, merged?.slice(at, at + p.messages.length));
      at += p.messages.length;
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
