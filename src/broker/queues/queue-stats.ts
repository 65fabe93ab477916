// What a queue reports about itself: depth (ready messages) and the stats snapshot, computed from
// its state, counters and rate windows. Reads at most one record per priority level (the oldest).
import type { Clock } from '../../common/index.js';
import type { LogRecord } from '../../storage/index.js';
import type { QueueStats } from '../queue-types.js';
import { recordEnqueuedMs } from './queue-record.js';
import { DELAY_LEVEL, type QueueState } from './queue-state.js';
import type { RateWindow } from './rate-window.js';

/** What stats need from their queue engine. */
export interface StatsSource {
  readonly name: string;
  readonly clock: Clock;
  readonly state: QueueState;
  readonly options: { readonly deadLetterQueue?: string };
  readonly host: { depthOf(queue: string): number };
  readonly counters: {
    readonly deadLettered: number;
    readonly expired: number;
    readonly dropped: number;
    readonly receiveErrors: number;
    readonly deadLetterErrors: number;
  };
  readonly rates: Readonly<Record<'publish' | 'deliver' | 'ack' | 'nack' | 'error', RateWindow>>;
  readonly bytes: number;
  readOne(level: number, offset: number): Promise<LogRecord | null>;
}

/** Ready messages (what receive could return): neither leased, waiting for a retry nor being dead-lettered. */
export function readyCount(s: QueueState): number {
  return s.messageCount() - (s.inFlightCount - s.aheadCount) - s.waitingCount - s.settlingCount;
}

export async function queueStats(q: StatsSource): Promise<QueueStats> {
  // Every figure is taken at one instant, before the one await: the oldest message's record is read
  // after, but it is the record that was oldest at that instant.
  const now = q.clock.now();
  const s = q.state;
  const oldestAt: [level: number, offset: number][] = [];
  for (let level = 0; level < s.levels.length; level++) {
    const l = s.levels[level];
    const first = l.settled.firstGapFrom(l.startOffset);
    if (first < l.endOffset) oldestAt.push([level, first]);
  }
  // Delayed messages count too (operations.md: ready, in flight or delayed). The delay log is in
  // publish order, so its first unsettled record is its oldest.
  const firstDelayed = s.delay.settled.firstGapFrom(s.delay.startOffset);
  if (firstDelayed < s.delay.endOffset) oldestAt.push([DELAY_LEVEL, firstDelayed]);
  const dlq = q.options.deadLetterQueue;
  const stats: QueueStats = {
    kind: 'queue',
    name: q.name,
    depth: readyCount(s),
    // A hand-off whose append is not yet durable cannot have reached its consumer: not in flight yet.
    inFlight: s.inFlightCount - s.aheadCount,
    delayed: s.waitingCount + s.unsettledIn(DELAY_LEVEL),
    deadLettered: q.counters.deadLettered,
    dlqDepth: dlq === undefined ? 0 : q.host.depthOf(dlq),
    oldestAgeMs: 0,
    bytes: Math.max(0, q.bytes),
    publishRate: q.rates.publish.perSecond(now),
    deliverRate: q.rates.deliver.perSecond(now),
    ackRate: q.rates.ack.perSecond(now),
    nackRate: q.rates.nack.perSecond(now),
    errorRate: q.rates.error.perSecond(now),
    expired: q.counters.expired,
    dropped: q.counters.dropped,
    receiveErrors: q.counters.receiveErrors,
    deadLetterErrors: q.counters.deadLetterErrors,
  };
  // Its age on this queue: a message a redrive brought back from a dead-letter queue counts from
  // the redrive, not its first publish, or the whole time it spent elsewhere would show at once.
  let oldest = Infinity;
  for (const [level, offset] of oldestAt) {
    const rec = await q.readOne(level, offset);
    if (rec !== null) oldest = Math.min(oldest, recordEnqueuedMs(rec));
  }
  if (oldest !== Infinity) stats.oldestAgeMs = Math.max(0, now - oldest);
  return stats;
}
