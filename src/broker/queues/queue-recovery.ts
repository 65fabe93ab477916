// Opening a queue after a restart: replays the journal (snapshot + ops) into the state, takes the
// logs' bounds, re-reads every tracked message and counts (or, past a sample, estimates) the unsettled bytes. Leases open when
// the broker stopped (closed or crashed) are over: their consumers are gone, so each is a failed
// delivery, as an expired lease is: visible again, or dead-lettered at maxDeliveries.
import type { Clock } from '../../common/index.js';
import type { Journal, LogRecord, PartitionLog } from '../../storage/index.js';
import { decodeEntry } from './queue-journal.js';
import { DELAY_LEVEL, type QueueState, type Tracked } from './queue-state.js';
import { H_DUE_MS, recordBytes, recordGroupId } from './queue-record.js';
import type { TimerHeap } from './timer-heap.js';

/** What recovery needs from its queue engine. */
export interface RecoveryHost {
  readonly clock: Clock;
  readonly state: QueueState;
  readonly options: { readonly fifo: boolean; readonly maxDeliveries: number };
  readonly store: { readonly logs: PartitionLog[]; readonly delayLog: PartitionLog; readonly journal: Journal };
  readOne(level: number, offset: number): Promise<LogRecord | null>;
}

export interface Recovered {
  /** Bytes of unsettled messages in all logs: counted from the records, estimated past a sample (unsettledBytes). */
  estimatedBytes: number;
  /**
   * Journaled state was dropped because the log ends before its offset: delivery records of
   * hand-offs (queue-handoff.ts) whose append never became durable, or settles of a tail lost with
   * fsync 'interval' or 'never'. The journal must be rewritten before the log's end offsets are used again.
   */
  droppedBeyondEnd: boolean;
  /**
   * Messages whose lease was open at maxDeliveries or beyond, in state settling: the engine
   * dead-letters them once every queue is open (a dead-letter queue is another queue).
   */
  deadLetters: Tracked[];
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
  const deadLetters: Tracked[] = [];
  const maxDeliveries = q.options.maxDeliveries;
  for (const t of [...q.state.tracked.values()]) {
    const rec = await q.readOne(t.level, t.offset);
    if (rec === null) {
      // Below the log's start: truncated away, settled before the journal said so. At or past its
      // end: a hand-off's delivery record for an append that never became durable.
      if (t.offset >= q.state.level(t.level).endOffset) droppedBeyondEnd = true;
      q.state.forgetRecovered(t);
      continue;
    }
    t.bytes = recordBytes(rec);
    if (q.options.fifo) q.state.setGroup(t, recordGroupId(rec));
    if (t.state === 'inflight' && maxDeliveries > 0 && t.deliveryCount >= maxDeliveries) {
      // Counted, or a message that crashes its consumer's process (an embedded broker's) every
      // time would be delivered for ever.
      t.lastError = `lease ended by a broker restart after delivery ${t.deliveryCount}`;
      q.state.beginSettling(t);
      deadLetters.push(t);
    } else if (t.state === 'inflight' || t.dueMs <= now) q.state.makeVisible(t);
    else timers.schedule(t.key, t.dueMs);
  }
  let bytes = 0;
  for (let level = 0; level < q.store.logs.length; level++)
    bytes += await unsettledBytes(q, level, q.store.logs[level]);
  bytes += await unsettledBytes(q, DELAY_LEVEL, q.store.delayLog);
  return { estimatedBytes: bytes, droppedBeyondEnd, deadLetters };
}

/** Log bytes a queue's open reads per level to count its unsettled bytes; past them it estimates. */
const BYTES_SAMPLE_READ_BYTES = 1024 * 1024;

/**
 * The bytes (payload + headers + key, as maxBytes counts them) of a level's unsettled messages:
 * summed record by record from the first one on, for at most BYTES_SAMPLE_READ_BYTES of log; the
 * rest, if any, at the average of those read. (Scaling the log's size by the share of unsettled
 * messages counted the batches' framing too, about twice the bytes of small messages, so maxBytes
 * refused publishes that fit after every restart.)
 */
async function unsettledBytes(q: RecoveryHost, level: number, log: PartitionLog): Promise<number> {
  const unsettled = q.state.unsettledIn(level);
  if (unsettled === 0) return 0;
  const settled = q.state.level(level).settled;
  let counted = 0;
  let bytes = 0;
  let readBytes = 0;
  let at = settled.firstGapFrom(log.startOffset);
  while (at < log.endOffset && counted < unsettled && readBytes < BYTES_SAMPLE_READ_BYTES) {
    const recs = await log.read(at, { maxBytes: 1024 * 1024 });
    if (recs.length === 0) break;
    for (const rec of recs) {
      if (rec.offset >= log.endOffset) break;
      // A delayed message was counted at publish without the due time its delay log adds.
      const n = level === DELAY_LEVEL ? recordBytes(rec) - dueHeaderBytes(rec) : recordBytes(rec);
      readBytes += n;
      if (settled.has(rec.offset)) continue;
      bytes += n;
      counted++;
    }
    at = recs[recs.length - 1].offset + 1;
  }
  if (counted === 0) return Math.round((log.sizeBytes * unsettled) / Math.max(1, log.endOffset - log.startOffset));
  return bytes + Math.round((bytes / counted) * Math.max(0, unsettled - counted));
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

/** The bytes recordBytes counts for the due-time header a delayed record carries (0 without one). */
function dueHeaderBytes(rec: LogRecord): number {
  for (const h of rec.headers) if (h.key === H_DUE_MS) return h.key.length + h.value.length;
  return 0;
}
