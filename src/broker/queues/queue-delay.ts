// Delayed messages of one queue: which wait in the delay log, when the next falls due, and moving
// due ones to their priority logs. The engine owns one and calls it under its delivery mutex.
import type { Clock } from '../../common/index.js';
import type { LogRecord, PartitionLog, RecordInput } from '../../storage/index.js';
import { DelayIndex, type DelayEntry } from './delay-index.js';
import { QUEUE_DEFAULTS } from './queue-config.js';
import { DELAY_LEVEL, type QueueState } from './queue-state.js';
import { recordDueMs, undelayedRecord } from './queue-record.js';
import type { TimerHeap } from './timer-heap.js';

/** The queue's timer key for "a delayed message is due" (lease batches use keys below it). */
export const DELAY_TIMER_KEY = -1;

/** What delayed messages need from their queue engine. */
export interface DelayHost {
  readonly closed: boolean;
  readonly clock: Clock;
  readonly state: QueueState;
  readonly store: { readonly delayLog: PartitionLog };
  readonly journal: { commit(): Promise<void> };
  readOne(level: number, offset: number): Promise<LogRecord | null>;
  levelFor(rec: { headers: RecordInput['headers'] }): number;
  appendLevel(level: number, records: RecordInput[], sizeBytes: number, onStored?: () => void): Promise<number>;
  notify(): void;
}

/** Most due delayed messages moved in one step (one append per level, one journal commit). */
const MOVE_BATCH_MESSAGES = 1000;

export class DelayedMessages {
  private readonly index = new DelayIndex(QUEUE_DEFAULTS.delayIndexCapacity);
  /**
   * No move is tried before this time: a move (or rescan) failed, and trying again at once, on
   * every receive or timer, would spin on a failing log. The due messages stay indexed meanwhile.
   */
  private retryAtMs = 0;

  constructor(
    private readonly q: DelayHost,
    private readonly timers: TimerHeap<number>,
  ) {}

  /** Records a delayed message just appended to the delay log at offset; call arm() after a batch. */
  offer(dueMs: number, offset: number): void {
    this.index.offer(dueMs, offset);
  }

  /** Whether moveDue() has work now: a message is due, or the index ran out and must be refilled. */
  hasWork(nowMs: number): boolean {
    if (nowMs < this.retryAtMs) return false;
    return this.index.peekDueMs() <= nowMs || this.index.needsRescan();
  }

  /** Forgets every entry (purge settled the delay log). */
  reset(): void {
    this.index.reset();
  }

  /**
   * Moves due delayed messages from the delay log to their priority logs. Caller holds the mutex.
   * If a move fails, what it did not move is indexed again, tried after delayMoveRetryMs, and the
   * error is thrown: left out of the index, it would wait in the delay log until a rescan or restart.
   */
  async moveDue(): Promise<void> {
    try {
      if (this.q.clock.now() < this.retryAtMs) return;
      await this.moveDueBatches();
    } catch (err) {
      this.retryAtMs = this.q.clock.now() + QUEUE_DEFAULTS.delayMoveRetryMs;
      throw err;
    } finally {
      if (!this.q.closed) this.arm();
    }
  }

  private async moveDueBatches(): Promise<void> {
    const q = this.q;
    for (;;) {
      if (q.closed) return;
      if (this.index.needsRescan()) await this.scan();
      const due = this.index.popDueEntries(q.clock.now(), MOVE_BATCH_MESSAGES);
      if (due.length === 0) return;
      try {
        await this.move(due);
      } catch (err) {
        // Settled ones reached their level; the others are still pending in the delay log.
        for (const e of due) if (!q.state.delay.settled.has(e.offset)) this.index.offer(e.dueMs, e.offset);
        throw err;
      }
    }
  }

  /** Appends due messages to their levels, settling each in the step its level counts it. */
  private async move(due: readonly DelayEntry[]): Promise<void> {
    const q = this.q;
    const byLevel = new Map<number, { records: RecordInput[]; delayOffsets: number[] }>();
    for (const { offset } of due) {
      const rec = await q.readOne(DELAY_LEVEL, offset);
      if (rec === null || q.state.delay.settled.has(offset)) continue;
      const level = q.levelFor(rec);
      let move = byLevel.get(level);
      if (move === undefined) byLevel.set(level, (move = { records: [], delayOffsets: [] }));
      move.records.push(undelayedRecord(rec));
      move.delayOffsets.push(offset);
    }
    // Sizes moved from the delay log to a level: net zero for the queue's bytes. A message leaves
    // the delay log in the step its level counts it, so maxLength, overflow and stats, which count
    // both, never see it twice while other levels' appends are still on their way. Every append
    // ends before this returns, so a failed one's messages are known to be unsettled.
    const appended = await Promise.allSettled(
      [...byLevel].map(([level, move]) =>
        q.appendLevel(level, move.records, 0, () => {
          for (const offset of move.delayOffsets) q.state.settle(DELAY_LEVEL, offset);
        }),
      ),
    );
    const failed = appended.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
    if (failed.length === 0 || failed.length < appended.length) {
      await q.journal.commit();
      q.notify();
    }
    if (failed.length > 0) throw failed[0].reason;
  }

  /** Refills the delay index from the delay log (at open, and when the index ran out). */
  async scan(): Promise<void> {
    this.index.reset();
    const d = this.q.state.delay;
    const end = d.endOffset;
    let at = d.settled.firstGapFrom(d.startOffset);
    try {
      while (at < end) {
        const recs = await this.q.store.delayLog.read(at, {
          maxBytes: QUEUE_DEFAULTS.readMaxBytes,
          maxRecords: 4096,
        });
        if (recs.length === 0) break;
        for (const rec of recs) {
          if (rec.offset >= end) break;
          if (!d.settled.has(rec.offset)) this.index.offer(recordDueMs(rec), rec.offset);
        }
        at = recs[recs.length - 1].offset + 1;
      }
    } catch (err) {
      // What the scan did not reach may be due before what it indexed: scan again, whole.
      this.index.invalidate();
      throw err;
    }
  }

  /**
   * Schedules the delay timer for the earliest due message, or at once when the index must be
   * refilled; after a failed move, not before its retry.
   */
  arm(): void {
    const due = this.index.peekDueMs();
    if (due !== Infinity) this.timers.schedule(DELAY_TIMER_KEY, Math.max(due, this.retryAtMs));
    else if (this.index.needsRescan())
      this.timers.schedule(DELAY_TIMER_KEY, Math.max(this.q.clock.now(), this.retryAtMs));
  }
}
