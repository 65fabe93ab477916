// The intent journal: makes a write that spans several targets (an exchange fan-out, a
// transaction's acks + publishes + offset commits) crash-atomic. Protocol:
//   1. the caller validates every op and checks every target's admission (nothing written yet);
//   2. the intent {id, ops} is appended in a `begun` list and fsynced — from here it WILL be applied;
//   3. the ops are applied (queue/topic writes, acks, offset commits);
//   4. its id is listed as `done` in a later entry (not awaited: losing it only causes a replay).
// Concurrent intents share the work in rounds: every intent submitted in one event-loop turn, or
// while the previous round's entry was being written, goes into one entry (one write, one fsync),
// and the round's writes to one target are merged into one write where that changes nothing
// (intent-round.ts). Done ids ride on the next entry, so they cost no fsync of their own.
// On open, every begun-not-done intent is rolled forward with replay=true. Replays never duplicate
// because each op is idempotent at its target: writes carry a dedupId (the message id when the
// producer gave none) that the queue/topic dedups within its window, acks of settled messages are
// no-ops, and offset commits set a value unless it, or a commit decided after it, was written
// (OffsetStore.commitUnlessSuperseded: a replay never moves a group's offset back).
import { WharfError } from '../../common/index.js';
import type { Journal } from '../../storage/index.js';
import { decodeIntentEntry, encodeIntentEntry } from './intent-entry.js';
import type { Intent, IntentApplier, IntentResults } from './intent-types.js';
import { applyRound, type MergePolicy, type RoundOutcome } from './intent-round.js';

export type { Intent, IntentApplier, IntentOp, IntentResults, WriteOp } from './intent-types.js';

export interface IntentJournalOptions {
  apply: IntentApplier;
  /** Whether one target may take the writes of several intents in one call; default: never. */
  mergeable?: MergePolicy;
  /** Journal size that triggers compaction; default INTENT_JOURNAL_COMPACT_BYTES. */
  compactBytes?: number;
}

/** Journal bytes after which a quiet journal (nothing in flight) is rewritten to its pending entries. */
export const INTENT_JOURNAL_COMPACT_BYTES = 4 * 1024 * 1024;

interface Submitted {
  intent: Intent;
  resolve(results: IntentResults): void;
  reject(err: unknown): void;
}

export class IntentJournal {
  /** Intents waiting for the next entry. */
  private next: Submitted[] = [];
  /** Ids of intents applied since the last entry was written. */
  private doneIds: string[] = [];
  /** Begun intents (their entry is durable or being written) not yet settled: kept by compaction. */
  private readonly applying = new Map<string, Intent>();
  private flushScheduled = false;
  /** A round's entry is being written; the next round waits for it (so it takes everything meanwhile). */
  private entryInFlight = false;
  private readonly writes = new Set<Promise<void>>();
  private compacting: Promise<void> | null = null;
  private closed = false;
  /** Begun intents whose apply failed in this process: kept across compaction for the next open. */
  private readonly unfinished = new Map<string, Intent>();
  private readonly apply: IntentApplier;
  private readonly mergeable: MergePolicy;
  private readonly compactBytes: number;
  /** Size of the last snapshot: compaction waits until the journal doubled it, so it cannot thrash. */
  private snapshotBytes = 0;
  /** Entries written for rounds (tests and benchmarks check that rounds are shared). */
  roundCount = 0;

  constructor(
    private readonly journal: Journal,
    options: IntentJournalOptions,
  ) {
    this.apply = options.apply;
    this.mergeable = options.mergeable ?? (() => false);
    this.compactBytes = options.compactBytes ?? INTENT_JOURNAL_COMPACT_BYTES;
  }

  /** Intents begun but not done when the journal was opened (a crash interrupted them). */
  pendingOnOpen(): Intent[] {
    const begun = new Map<string, Intent>();
    for (const bytes of this.journal.entries()) {
      const e = decodeIntentEntry(bytes);
      for (const i of e.begun) begun.set(i.id, i);
      for (const id of e.done) begun.delete(id);
    }
    return [...begun.values()];
  }

  /** Rolls every interrupted intent forward, then empties the journal. Call once, before serving. */
  async recover(): Promise<number> {
    const pending = this.pendingOnOpen();
    for (const intent of pending) {
      const outcomes = await Promise.allSettled(intent.ops.map((op) => this.apply(op, true)));
      // A target that refuses even now (e.g. still full) must not stop the broker from opening:
      // the intent stays journaled and the next open tries again (see docs/exchanges.md).
      if (outcomes.some((o) => o.status === 'rejected')) this.unfinished.set(intent.id, intent);
    }
    await this.journal.rewrite(this.snapshot());
    return pending.length;
  }

  /** Intents committed but not fully applied in this process (retried at the next open). */
  get unfinishedCount(): number {
    return this.unfinished.size;
  }

  /** Steps 2-4 of the protocol; resolves, with what the targets said, once every op is applied and durable. */
  run(intent: Intent): Promise<IntentResults> {
    if (this.closed) return Promise.reject(new WharfError('CLOSED', 'the broker is closed'));
    return new Promise<IntentResults>((resolve, reject) => {
      this.next.push({ intent, resolve, reject });
      this.schedule();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.compacting !== null) await this.compacting;
    // Intents not yet in an entry are not committed: refuse them, as a publish after close would be.
    const refused = this.next;
    this.next = [];
    for (const s of refused)
      s.reject(new WharfError('CLOSED', 'the broker closed before this write was committed; nothing was written'));
    if (this.doneIds.length > 0) this.write(encodeIntentEntry({ begun: [], done: this.takeDone() }));
    await Promise.all([...this.writes]);
    await this.journal.close();
  }

  /** One flush per event-loop turn, so everything submitted in the turn shares the entry. */
  private schedule(): void {
    if (this.flushScheduled || this.entryInFlight || this.compacting !== null) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed || this.entryInFlight || this.compacting !== null) return;
    const submitted = this.next;
    this.next = [];
    if (submitted.length === 0 && this.doneIds.length === 0) return;
    const done = this.takeDone();
    let round: Submitted[];
    let entry: Uint8Array;
    try {
      ({ round, entry } = this.encodeRound(submitted, done));
    } catch (err) {
      // The round as a whole cannot be encoded: none of it is begun (an intent already refused on
      // its own is settled, and rejecting it again changes nothing).
      this.settle(
        submitted,
        submitted.map(() => ({ error: err })),
        false,
      );
      return;
    }
    if (round.length === 0 && done.length === 0) return;
    if (round.length === 0) {
      this.write(entry);
      return;
    }
    for (const s of round) this.applying.set(s.intent.id, s.intent);
    this.entryInFlight = true;
    this.roundCount++;
    this.write(entry).then(
      () => {
        this.entryInFlight = false;
        this.schedule();
        this.maybeCompact();
        // Past this point the round is committed: if applying fails (e.g. a disk error), recovery
        // at the next open finishes it, so its callers must not assume "none".
        return applyRound(
          round.map((s) => s.intent),
          this.apply,
          this.mergeable,
        ).then(
          (outcomes) => this.settle(round, outcomes, true),
          (err: unknown) =>
            this.settle(
              round,
              round.map(() => ({ error: err })),
              true,
            ),
        );
      },
      (err: unknown) => {
        this.entryInFlight = false;
        this.settle(
          round,
          round.map(() => ({ error: err })),
          false,
        );
        this.schedule();
      },
    );
  }

  /**
   * The entry that begins a round. An intent that cannot be encoded (a message field JSON cannot
   * hold, such as a BigInt in an unknown field) is refused on its own and left out, so it does not
   * fail the other intents it was submitted with. The round is encoded once when all is well; each
   * intent is encoded apart only after that failed, so the common path pays nothing for it.
   */
  private encodeRound(submitted: Submitted[], done: string[]): { round: Submitted[]; entry: Uint8Array } {
    try {
      return { round: submitted, entry: encodeIntentEntry({ begun: submitted.map((s) => s.intent), done }) };
    } catch {
      const round = submitted.filter((s) => {
        try {
          encodeIntentEntry({ begun: [s.intent], done: [] });
          return true;
        } catch (err) {
          s.reject(unencodable(err));
          return false;
        }
      });
      return { round, entry: encodeIntentEntry({ begun: round.map((s) => s.intent), done }) };
    }
  }

  private write(entry: Uint8Array): Promise<void> {
    const written = this.journal.append(entry);
    const tracked = written.catch(() => undefined);
    this.writes.add(tracked);
    void tracked.then(() => this.writes.delete(tracked));
    return written;
  }

  private settle(round: Submitted[], outcomes: RoundOutcome[], committed: boolean): void {
    round.forEach((s, i) => {
      this.applying.delete(s.intent.id);
      const outcome = outcomes[i];
      if ('results' in outcome) {
        this.doneIds.push(s.intent.id);
        s.resolve(outcome.results);
      } else if (!committed) {
        s.reject(outcome.error);
      } else {
        this.unfinished.set(s.intent.id, s.intent);
        const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
        s.reject(
          new WharfError(
            'UNAVAILABLE',
            `a committed multi-target write failed part-way (${message}); it is finished when the broker reopens`,
            { cause: outcome.error },
          ),
        );
      }
    });
    if (this.closed) return;
    this.schedule();
    this.maybeCompact();
  }

  private takeDone(): string[] {
    const done = this.doneIds;
    this.doneIds = [];
    return done;
  }

  /** The journal reduced to what a reopen needs: every begun intent not known to be done. */
  private snapshot(): Uint8Array[] {
    const begun = [...this.unfinished.values(), ...this.applying.values()];
    const entries = begun.length === 0 ? [] : [encodeIntentEntry({ begun, done: [] })];
    this.snapshotBytes = entries.reduce((n, e) => n + e.length, 0);
    return entries;
  }

  private maybeCompact(): void {
    if (
      this.entryInFlight ||
      this.compacting !== null ||
      this.journal.sizeBytes < Math.max(this.compactBytes, 2 * this.snapshotBytes)
    )
      return;
    // No entry is being written, so every begun intent's entry is durable and the intent is done,
    // unfinished or still applying; the snapshot keeps the last two, and the done ids not yet
    // written name intents it leaves out. Intents not yet begun wait for the rewrite (schedule()).
    // Needs no quiet moment, so the journal stays small under steady load too.
    this.doneIds = [];
    this.compacting = this.journal
      .rewrite(this.snapshot())
      .catch(() => undefined)
      .finally(() => {
        this.compacting = null;
        if (!this.closed) this.schedule();
      });
  }
}

function unencodable(err: unknown): WharfError {
  const reason = err instanceof Error ? err.message : String(err);
  return new WharfError(
    'INVALID_ARGUMENT',
    `a message of this write cannot be stored (${reason}); every field of a message must be a JSON value`,
    { cause: err },
  );
}
