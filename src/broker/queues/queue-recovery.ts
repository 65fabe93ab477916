// Opening a queue after a restart: replays the journal (snapshot + ops) into the state, takes the
// logs' bounds, re-reads every tracked message and estimates the unsettled bytes. Leases in flight
// at a crash become visible: their consumers are gone.
import type { Clock } from '../../common/index.js';
import type { Journal, LogRecord, PartitionLog } from '../../storage/index.js';
import { decodeEntry } from './queue-journal.js';
import { DELAY_LEVEL, type QueueState } from './queue-state.js';
import { recordBytes, recordGroupId } from './queue-record.js';
import type { TimerHeap } from './timer-heap.js';

/** What recovery needs from its queue engine. */
export interface RecoveryHost {
  readonly clock: Clock;
  readonly state: QueueState;
  readonly options: { readonly fifo: boolean };
  readonly store: { readonly logs: PartitionLog[]; readonly delayLog: PartitionLog; readonly journal: Journal };
  readOne(level: number, offset: number): Promise<LogRecord | null>;
}

export interface Recovered {
  /** Bytes of unsettled messages in all logs, estimated (exact sizes are not journaled). */
  estimatedBytes: number;
  /**
   * Journaled state was dropped because the log ends before its offset: delivery records of
   * hand-offs (queue-handoff.ts) whose append never became durable, or settles of a tail lost with
   * fsync 'interval' or 'never'. The journal must be rewritten before the log's end offsets are used again.
   */
  droppedBeyondEnd: boolean;
}

/** Rebuilds q.state from the journal and the logs and schedules the retries still waiting. */
export async function recoverState(q: RecoveryHost, timers: TimerHeap<number>): Promise<Recovered> {
  for (const entry of q.store.journal.entries()) {
    const d = decodeEntry(entry);
    if (d.kind === 'snapshot') q.state.restore(d.snapshot);
    else for (const op of d.ops) q.state.apply(op);
  }
  q.state.finishRecovery();
  const now = q.clock.now();
  let droppedBeyondEnd = syncBounds(q.state, DELAY_LEVEL, q.store.delayLog);
  q.store.logs.forEach((log, i) => (droppedBeyondEnd = syncBounds(q.state, i, log) || droppedBeyondEnd));
  for (const t of [...q.state.tracked.values()]) {
    const rec = await q.readOne(t.level, t.offset);
    if (rec === null) {
      // Below the log's start: truncated away, settled before the journal said so. At or past its
      // end: a hand-off's delivery record for an append that never became durable.
      if (t.offset >= q.state.level(t.level).endOffset) droppedBeyondEnd = true;
      q.state.tracked.delete(t.key);
      q.state.waitingCount--;
      continue;
    }
    t.bytes = recordBytes(rec);
    if (q.options.fifo) q.state.setGroup(t, recordGroupId(rec));
    if (t.dueMs <= now) q.state.makeVisible(t);
    else timers.schedule(t.key, t.dueMs);
  }
  let bytes = 0;
  const all = [...q.store.logs, q.store.delayLog];
  const levels = [...q.store.logs.map((_, i) => i), DELAY_LEVEL];
  all.forEach((log, i) => {
    const total = log.endOffset - log.startOffset;
    if (total > 0) bytes += Math.round((log.sizeBytes * q.state.unsettledIn(levels[i])) / total);
  });
  return { estimatedBytes: bytes, droppedBeyondEnd };
}

/** Takes the log's bounds; true when settled offsets at or past its end were dropped. */
function syncBounds(state: QueueState, level: number, log: PartitionLog): boolean {
  const l = state.level(level);
  l.startOffset = log.startOffset;
  l.endOffset = log.endOffset;
  l.settled.dropBelow(log.startOffset);
  const droppedPastEnd = l.settled.dropFrom(log.endOffset);
  l.cursor = Math.max(l.cursor, log.startOffset);
  return droppedPastEnd;
}
