// The intent journal: makes a write that spans several targets (an exchange fan-out, a
// transaction's acks + publishes + offset commits) crash-atomic. Protocol:
//   1. the caller validates every op and checks every target's admission (nothing written yet);
//   2. `begin` {id, ops} is appended and fsynced — from here the intent WILL be applied;
//   3. the ops are applied (queue/topic writes, acks, offset commits);
//   4. `done` {id} is appended (not awaited: losing it only causes a replay, which is idempotent).
// On open, every begun-not-done intent is rolled forward with replay=true. Replays never duplicate
// because each op is idempotent at its target: writes carry a dedupId (the message id when the
// producer gave none) that the queue/topic dedups within its window, acks of settled messages are
// no-ops, and offset commits set a value.
import { WharfError } from '../../common/index.js';
import type { Journal } from '../../storage/index.js';
import type { MessageInput, PublishResult } from '../types.js';

export type IntentOp =
  | { op: 'write'; kind: 'queue' | 'topic'; name: string; messages: MessageInput[] }
  | { op: 'ack'; queue: string; id: string; receipt: string }
  | { op: 'offset'; topic: string; group: string; partition: number; offset: number };

export interface Intent {
  id: string;
  ops: IntentOp[];
}

/** Applies one op; replay=true during recovery (the op may already be applied). */
export type IntentApplier = (op: IntentOp, replay: boolean) => Promise<PublishResult[] | void>;

/** Journal bytes after which a quiet journal (nothing in flight) is rewritten to its pending entries. */
export const INTENT_JOURNAL_COMPACT_BYTES = 4 * 1024 * 1024;

type Entry = { t: 'begin'; id: string; ops: IntentOp[] } | { t: 'done'; id: string };

export function encodeIntentEntry(entry: Entry): Uint8Array {
  return Buffer.from(
    JSON.stringify(entry, (_k, v: unknown) => (v instanceof Uint8Array ? { __wharfBytes: Buffer.from(v).toString('base64') } : v)),
    'utf8',
  );
}

export function decodeIntentEntry(bytes: Uint8Array): Entry {
  return JSON.parse(Buffer.from(bytes).toString('utf8'), (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && typeof (v as { __wharfBytes?: unknown }).__wharfBytes === 'string') {
      return new Uint8Array(Buffer.from((v as { __wharfBytes: string }).__wharfBytes, 'base64'));
    }
    return v;
  }) as Entry;
}

export class IntentJournal {
  private inFlight = 0;
  private readonly doneWrites = new Set<Promise<void>>();
  private compacting: Promise<void> | null = null;
  private closed = false;
  /** Begun intents whose apply failed in this process: kept across compaction for the next open. */
  private readonly unfinished = new Map<string, Intent>();

  constructor(private readonly journal: Journal) {}

  /** Intents begun but not done when the journal was opened (a crash interrupted them). */
  pendingOnOpen(): Intent[] {
    const begun = new Map<string, Intent>();
    for (const bytes of this.journal.entries()) {
      const e = decodeIntentEntry(bytes);
      if (e.t === 'begin') begun.set(e.id, { id: e.id, ops: e.ops });
      else begun.delete(e.id);
    }
    return [...begun.values()];
  }

  /** Rolls every interrupted intent forward, then empties the journal. Call once, before serving. */
  async recover(apply: IntentApplier): Promise<number> {
    const pending = this.pendingOnOpen();
    for (const intent of pending) {
      const outcomes = await Promise.allSettled(intent.ops.map((op) => apply(op, true)));
      // A target that refuses even now (e.g. still full) must not stop the broker from opening:
      // the intent stays journaled and the next open tries again (see docs/exchanges.md).
      if (outcomes.some((o) => o.status === 'rejected')) this.unfinished.set(intent.id, intent);
    }
    await this.journal.rewrite([...this.unfinished.values()].map((i) => encodeIntentEntry({ t: 'begin', id: i.id, ops: i.ops })));
    return pending.length;
  }

  /** Intents committed but not fully applied in this process (retried at the next open). */
  get unfinishedCount(): number {
    return this.unfinished.size;
  }

  /** Steps 2-4 of the protocol. Results of write ops, in op order. */
  async run(intent: Intent, apply: IntentApplier): Promise<PublishResult[][]> {
    if (this.closed) throw new WharfError('CLOSED', 'the broker is closed');
    while (this.compacting !== null) await this.compacting;
    this.inFlight++;
    try {
      await this.journal.append(encodeIntentEntry({ t: 'begin', id: intent.id, ops: intent.ops }));
      // Past this point the intent is committed: if applying fails (e.g. a disk error), recovery
      // at the next open finishes it, so the caller must not assume "none".
      let results: PublishResult[][];
      try {
        // Targets are independent: apply them concurrently so their fsyncs overlap.
        const applied = await Promise.all(intent.ops.map((op) => apply(op, false)));
        results = intent.ops.flatMap((op, i) => (op.op === 'write' ? [applied[i] ?? []] : []));
      } catch (err) {
        this.unfinished.set(intent.id, intent);
        throw new WharfError('UNAVAILABLE', `a committed multi-target write failed part-way (${String((err as Error).message)}); it is finished when the broker reopens`, { cause: err });
      }
      const done = this.journal.append(encodeIntentEntry({ t: 'done', id: intent.id })).catch(() => undefined);
      this.doneWrites.add(done);
      void done.then(() => this.doneWrites.delete(done));
      return results;
    } finally {
      this.inFlight--;
      this.maybeCompact();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.doneWrites]);
    if (this.compacting !== null) await this.compacting;
    await this.journal.close();
  }

  private maybeCompact(): void {
    if (this.inFlight > 0 || this.compacting !== null || this.journal.sizeBytes < INTENT_JOURNAL_COMPACT_BYTES) return;
    // Nothing is in flight, so every begun intent has its done queued: wait for those, then drop all.
    this.compacting = Promise.all([...this.doneWrites])
      .then(() => this.journal.rewrite([...this.unfinished.values()].map((i) => encodeIntentEntry({ t: 'begin', id: i.id, ops: i.ops }))))
      .catch(() => undefined)
      .finally(() => {
        this.compacting = null;
      });
  }
}
