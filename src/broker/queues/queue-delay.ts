// Delayed messages of one queue: which wait in the delay log, when the next falls due, and moving
// due ones to their priority logs. The engine owns one and calls it under its delivery mutex.
import type { Clock } from '../../common/index.js';
import type { LogRecord, PartitionLog, RecordInput } from '../../storage/index.js';
import { DelayIndex } from './delay-index.js';
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

export class DelayedMessages {
  private readonly index = new DelayIndex(QUEUE_DEFAULTS.delayIndexCapacity);

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
    return this.index.peekDueMs() <= nowMs || this.index.needsRescan();
  }

  /** Forgets every entry (purge settled the delay log). */
  reset(): void {
    this.index.reset();
  }

  /** Moves due delayed messages from the delay log to their priority logs. Caller holds the mutex. */
  async moveDue(): Promise<void> {
    const q = this.q;
    for (;;) {
      if (q.closed) return;
      if (this.index.needsRescan()) await this.scan();
      const offsets = this.index.popDue(q.clock.now(), 1000);
      if (offsets.length === 0) break;
      const byLevel = new Map<number, { records: RecordInput[]; delayOffsets: number[] }>();
      for (const offset of offsets) {
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
      // both, never see it twice while other levels' appends are still on their way.
      await Promise.all(
        [...byLevel].map(([level, move]) =>
          q.appendLevel(level, move.records, 0, () => {
            for (const offset of move.delayOffsets) q.state.settle(DELAY_LEVEL, offset);
          }),
        ),
      );
      await q.journal.commit();
      q.notify();
    }
    this.arm();
  }

  /** Refills the delay index from the delay log (at open, and when the index ran out). */
  async scan(): Promise<void> {
    this.index.reset();
    const d = this.q.state.delay;
    const end = d.endOffset;
    let at = d.settled.firstGapFrom(d.startOffset);
    while (at < end) {
      const recs = await this.q.store.delayLog.read(at, { maxBytes: QUEUE_DEFAULTS.readMaxBytes, maxRecords: 4096 });
      if (recs.length === 0) break;
      for (const rec of recs) {
        if (rec.offset >= end) break;
        if (!d.settled.has(rec.offset)) this.index.offer(recordDueMs(rec), rec.offset);
      }
      at = recs[recs.length - 1].offset + 1;
    }
  }

  /** Schedules the delay timer for the earliest due message, or at once when the index must be refilled. */
  arm(): void {
    const due = this.index.peekDueMs();
    if (due !== Infinity) this.timers.schedule(DELAY_TIMER_KEY, due);
    else if (this.index.needsRescan()) this.timers.schedule(DELAY_TIMER_KEY, this.q.clock.now());
  }
}
