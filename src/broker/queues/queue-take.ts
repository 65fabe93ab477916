// The passes of one take (QueueEngine.take holds the delivery lock around them): redeliveries of
// visible messages, the heads of free FIFO groups, then new messages from the level's log cursor,
// read whole batches at a time with what a take did not use kept for the next (read-ahead.ts).
// Each message taken gets its lease here; the take's one journal commit makes them durable.
import { assert, type Clock } from '../../common/index.js';
import type { LogRecord, PartitionLog } from '../../storage/index.js';
import { Delivery, type DeliverySettler } from './delivery.js';
import type { LeaseBook } from './lease-book.js';
import { QUEUE_DEFAULTS, type ResolvedQueueOptions } from './queue-config.js';
import { currentLease } from './queue-settle.js';
import { trackedKey, trackedOffset, type QueueState, type Tracked } from './queue-state.js';
import { recordBytes, recordExpiresAtMs, recordGroupId } from './queue-record.js';
import { ReadAhead } from './read-ahead.js';
import { RecentAppends, type ByteBudget } from './recent-appends.js';

/** What a take needs of its queue (QueueEngine); a Delivery settles through it. */
export interface TakeHost extends DeliverySettler {
  readonly name: string;
  readonly options: ResolvedQueueOptions;
  readonly state: QueueState;
  readonly clock: Clock;
  log(level: number): PartitionLog;
  readOne(level: number, offset: number): Promise<LogRecord | null>;
  /** Settles a tracked message: its timer and lease gone, its bytes counted off (QueueEngine). */
  settleTracked(t: Tracked): void;
  /** Wakes long polls and idle consumers (messages given back). */
  notify(): void;
}

/** Settles a message whose time to live has passed (QueueEngine.expire). */
export type ExpireRecord = (rec: LogRecord, level: number, t: Tracked | undefined) => Promise<void>;

export class QueueTaker {
  /** Records read past what a take needed. */
  private readonly readAhead: ReadAhead;
  /** The newest durable appends, so a take at the tail reads nothing back (recent-appends.ts). */
  readonly recent: RecentAppends;

  constructor(
    private readonly q: TakeHost,
    private readonly leases: LeaseBook,
    /** Names this run of the queue in receipts (a receipt from before a restart is refused). */
    private readonly epoch: string,
    private readonly expire: ExpireRecord,
    recentBudget: ByteBudget,
  ) {
    this.readAhead = new ReadAhead(q.clock);
    this.recent = new RecentAppends(q.clock, recentBudget);
  }

  /** Lets go of kept records (purge, close). */
  clearReadAhead(): void {
    this.readAhead.clear();
    this.recent.clear();
  }

  private room(): boolean {
    return this.q.state.tracked.size < QUEUE_DEFAULTS.maxTrackedMessages;
  }

  /**
   * The passes of one take, highest level first: redeliveries, (FIFO) free groups' heads, then the
   * cursor. A pass that fails (an expired message whose dead letter cannot be written) fails the
   * take, and what it leased before is given back uncounted: no caller has those deliveries, and
   * left in flight they came back only when their leases ran out, each counted as a failed delivery
   * (at maxDeliveries dead-lettered, though nobody had seen them).
   */
  async takeAll(max: number, leaseMs: number): Promise<Delivery[]> {
    const out: Delivery[] = [];
    try {
      for (let level = this.q.options.priorities - 1; level >= 0 && out.length < max; level--) {
        await this.takeRedeliveries(level, max, leaseMs, out);
        if (level === 0 && this.q.options.fifo) await this.takeHeld(max, leaseMs, out);
        await this.takeFromCursor(level, max, leaseMs, out);
      }
    } catch (err) {
      this.giveBack(out);
      throw err;
    } finally {
      this.leases.close();
    }
    return out;
  }

  /** Visible again, uncounted, as a consumer closing before its handler ran hands a lease back. */
  private giveBack(out: Delivery[]): void {
    if (out.length === 0) return;
    const now = this.q.clock.now();
    for (const d of out) {
      const t = currentLease(this.q, d.receiptKey, d.receiptToken);
      if (t === undefined) continue; // settled since
      this.leases.release(t);
      this.q.state.requeue(t, now, -1);
      this.q.state.makeVisible(t);
    }
    this.q.notify();
  }

  /**
   * Visible messages of level (retries, expired leases), oldest offset first. One read of the log
   * serves a run of them: a consumer that died holding a thousand leases leaves a thousand visible
   * messages, and reading them one at a time (in turn, under the queue's lock, behind the busy
   * event loop's I/O) held every other take and hand-off of the queue for seconds.
   */
  private async takeRedeliveries(level: number, max: number, leaseMs: number, out: Delivery[]): Promise<void> {
    if (this.q.state.visible[level].length === 0) return; // the common case: no array per take
    const keys = [...this.q.state.visible[level]].sort((a, b) => a - b);
    /** Records read for the keys, in offset order; `at` is the first not yet passed. */
    let read: LogRecord[] = [];
    let at = 0;
    for (let k = 0; k < keys.length; k++) {
      if (out.length >= max) return;
      const t = this.q.state.tracked.get(keys[k]);
      if (t === undefined || t.state !== 'visible') continue;
      while (at < read.length && read[at].offset < t.offset) at++;
      if (at === read.length) {
        read = await this.q.log(level).read(t.offset, {
          maxBytes: QUEUE_DEFAULTS.readMaxBytes,
          maxRecords: redeliveryReadRecords(keys, k, max - out.length, t.offset),
        });
        at = 0;
        if (t.state !== 'visible' || this.q.state.tracked.get(keys[k]) !== t) continue; // settled meanwhile
      }
      const rec = at < read.length && read[at].offset === t.offset ? read[at] : null;
      if (rec === null) {
        this.q.settleTracked(t); // no longer in the log (truncated)
        continue;
      }
      if (recordExpiresAtMs(rec, this.q.options.ttlMs) <= this.q.clock.now()) {
        await this.expire(rec, level, t);
        continue;
      }
      out.push(this.lease(level, rec, leaseMs));
    }
  }

  /** FIFO queues: the head held for each group that is free again, one per group. */
  private async takeHeld(max: number, leaseMs: number, out: Delivery[]): Promise<void> {
    for (const groupId of [...this.q.state.freeGroups]) {
      while (out.length < max && this.room()) {
        const offset = this.q.state.takeHeld(groupId);
        if (offset === undefined) break;
        const rec = await this.q.readOne(0, offset);
        if (rec === null) continue;
        if (recordExpiresAtMs(rec, this.q.options.ttlMs) <= this.q.clock.now()) {
          try {
            await this.expire(rec, 0, undefined);
          } catch (err) {
            // Its dead letter could not be written: it stays its group's head for a later take, as
            // a message at the cursor stays there (dropped here, nothing would deliver it again).
            this.q.state.returnHeld(groupId, offset);
            throw err;
          }
          continue; // the group's next held message is now its head
        }
        out.push(this.lease(0, rec, leaseMs));
        break; // the group is busy until this one settles
      }
    }
  }

  /** New messages from level's log, from its cursor on; FIFO messages of a busy group are held. */
  private async takeFromCursor(level: number, max: number, leaseMs: number, out: Delivery[]): Promise<void> {
    const l = this.q.state.levels[level];
    // One time for the pass, as for its leases (they share a due time: one lease batch).
    let now = this.q.clock.now();
    this.recent.noteTake(now);
    while (out.length < max && this.room()) {
      const from = this.q.state.nextCursorOffset(level);
      if (from >= l.endOffset) return;
      let recs = this.readAhead.take(level, from) ?? this.recent.take(level, from);
      if (recs === null) {
        recs = await this.q.log(level).read(from, {
          maxBytes: QUEUE_DEFAULTS.readMaxBytes,
          maxRecords: Math.min(1000, max - out.length + 16),
          wholeBatches: true,
        });
        now = this.q.clock.now();
      }
      if (recs.length === 0) return;
      // Every source starts at `from` (the log at or after it): records all below it would be
      // skipped without moving the cursor, and this loop would spin, never awaiting, for good.
      assert(recs[recs.length - 1].offset >= from, `a take at ${level}/${from} was given records below it`);
      for (let i = 0; i < recs.length; i++) {
        const rec = recs[i];
        if (rec.offset >= l.endOffset || out.length >= max || !this.room()) {
          this.readAhead.keep(level, recs, i);
          return;
        }
        if (rec.offset < l.cursor) continue;
        if (this.q.state.isCandidate(level, rec.offset)) {
          if (recordExpiresAtMs(rec, this.q.options.ttlMs) <= now) {
            await this.expire(rec, level, undefined);
            now = this.q.clock.now(); // time passed while it was dead-lettered
          } else if (this.q.options.fifo && !this.q.state.groupIsFree(recordGroupId(rec))) {
            if (this.q.state.heldCount >= QUEUE_DEFAULTS.maxHeldMessages) {
              this.readAhead.keep(level, recs, i);
              return; // scan resumes when groups free up
            }
            this.q.state.hold(recordGroupId(rec), rec.offset);
          } else {
            out.push(this.lease(level, rec, leaseMs, now));
          }
        }
        l.cursor = rec.offset + 1;
      }
    }
  }

  /** Leases one message: its tracked state, its lease timer and the Delivery handed out (not yet decoded). */
  private lease(level: number, rec: LogRecord, leaseMs: number, now = this.q.clock.now()): Delivery {
    const groupId = this.q.options.fifo ? recordGroupId(rec) : undefined;
    // Checked before deliver() changes anything: a lease refused after it would leave the message
    // in flight with no expiry, never delivered again until a restart.
    const earlier = this.q.state.tracked.get(trackedKey(level, rec.offset));
    if (earlier !== undefined) this.leases.assertEnded(earlier);
    const t = this.q.state.deliver(level, rec.offset, now, leaseMs, groupId, recordBytes(rec));
    this.leases.add(t, t.dueMs);
    return new Delivery(this.q, rec, this.q.name, this.epoch, t.key, t.token, t.deliveryCount, t.firstDeliveredAt);
  }
}

/** Offsets one read of redeliveries spans at most. */
const REDELIVERY_READ_SPAN = 1000;

/**
 * How many records a read for the redelivery at keys[k] (offset `from`) asks for: up to the last
 * visible message the take may still want within REDELIVERY_READ_SPAN offsets, when those are at
 * least one in eight of the records read (a run a consumer left behind); else just its own (they
 * lie far apart: reading what lies between would decode records nobody wants, under the lock).
 */
function redeliveryReadRecords(keys: number[], k: number, wanted: number, from: number): number {
  let n = 0;
  let last = from;
  for (let j = k; j < keys.length && n < wanted; j++) {
    const offset = trackedOffset(keys[j]);
    if (offset - from >= REDELIVERY_READ_SPAN) break;
    last = offset;
    n++;
  }
  const span = last - from + 1;
  return n * 8 >= span ? span : 1;
}
