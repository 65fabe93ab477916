// Hand-off: a message published while a consumer waits with room is leased to that consumer as it
// is appended, and its delivery record is journaled while the append is fsynced, instead of after
// it. The consumer gets it once both are durable: one fsync round on the path from publish to
// delivery instead of two, and no read of the record back from the log.
//
// Only a message that a take would deliver next is handed off (Handoff.mayHandOff says when); the
// levels of one publish are appended highest first, so a lower level sees a higher one on its way.
// Anything else goes the usual way: durable, then notify, then take.
//
// The delivery record may be durable while the append is not (a crash between the two fsyncs, or a
// failed append): recovery drops a tracked message whose offset the log never got, and rewrites
// the journal before the log's end offset is used again (queue-recovery.ts, QueueEngine.recover).
import { assert, ChurnSet, type Clock } from '../../common/index.js';
import type { LogRecord, PartitionLog, RecordInput } from '../../storage/index.js';
import { Delivery, type DeliverySettler } from './delivery.js';
import type { LeaseBook } from './lease-book.js';
import { QUEUE_DEFAULTS, type ResolvedQueueOptions } from './queue-config.js';
import { recordBytes, recordExpiresAtMs } from './queue-record.js';
import { ownRecord } from './recent-appends.js';
import { trackedKey, type QueueState, type Tracked } from './queue-state.js';
import type { RateWindow } from './rate-window.js';

/**
 * The groups of one append by level, highest first (the delay log's number is above them all). The
 * appends start in this order, so a lower level's hand-off sees a higher one's append on its way
 * and waits for it (Handoff.mayHandOff).
 */
export function highestLevelFirst<T>(byLevel: Map<number, T>): Array<[number, T]> {
  return [...byLevel].sort((a, b) => b[0] - a[0]);
}

/** What a waiting taker would accept from a publish: as many messages as take(max, leaseMs, decode) would return. */
export interface TakeWish {
  max: number;
  leaseMs: number;
  /** false: deliveries keep their stored record (consumeStored). */
  decode: boolean;
}

/**
 * A caller of QueueEngine.waitForWork. Woken with no messages by notify(), its timeout or its
 * cancel; or, when it has a wish, claimed by a publish and later handed that publish's messages.
 * A claimed waiter is deaf to wakes: it is resolved exactly once, by the hand-off's end.
 */
export class Waiter {
  #done = false;
  #timer: { cancel(): void } | null = null;

  constructor(
    readonly wish: TakeWish | null,
    private readonly resolve: (batch: Delivery[]) => void,
    private readonly waiters: ChurnSet<Waiter>,
  ) {}

  /** Arms the timeout (after construction, so the timer can call wake). */
  armTimeout(clock: Clock, waitMs: number): void {
    this.#timer = clock.setTimer(waitMs, () => this.wake());
  }

  /** Resolves with no messages unless already resolved or claimed. */
  wake(): void {
    if (this.#done) return;
    this.#stop();
    this.resolve([]);
  }

  /** A publish takes this waiter: only hand() resolves it now. */
  claim(): void {
    assert(!this.#done, 'a waiter is claimed at most once, and only while waiting');
    this.#stop();
  }

  hand(batch: Delivery[]): void {
    this.resolve(batch);
  }

  #stop(): void {
    this.#done = true;
    this.waiters.delete(this);
    this.#timer?.cancel();
  }
}

/** What a hand-off needs of its queue (QueueEngine). */
export interface HandoffHost extends DeliverySettler {
  readonly name: string;
  readonly options: ResolvedQueueOptions;
  readonly state: QueueState;
  readonly clock: Clock;
  readonly closed: boolean;
  readonly waiters: ChurnSet<Waiter>;
  readonly rates: { readonly deliver: RateWindow };
  readonly journal: { commit(): Promise<void> };
  log(level: number): PartitionLog;
  /** True while a take or another locked step runs or waits to run. */
  isLocked(): boolean;
  /** True when a retry, lease expiry or delayed message is due (a take handles those first). */
  hasDueWork(nowMs: number): boolean;
  /** Wakes the waiters (messages given back). */
  notify(): void;
}

/** One waiter's share of a hand-off. */
interface Share {
  waiter: Waiter;
  leaseMs: number;
  /** Side by side: each delivery and the tracked message it leases (its receiptToken names the lease). */
  deliveries: Delivery[];
  tracked: Tracked[];
}

export class Handoff {
  /** Hand-offs between their offer and their end (close() waits for them). */
  private readonly pending = new ChurnSet<PendingHandoff>();

  constructor(
    private readonly q: HandoffHost,
    private readonly leases: LeaseBook,
    /** Names this run of the queue in receipts (as QueueTaker's). */
    private readonly epoch: string,
  ) {}

  /**
   * Called right after log(level).append(records) assigned offsets from baseOffset on (not yet
   * durable). Leases what the waiting takers accept, journals their delivery records, and returns
   * the hand-off to finish once the append is durable (or failed); null when nothing was handed off.
   */
  offer(level: number, baseOffset: number, records: RecordInput[]): PendingHandoff | null {
    const q = this.q;
    const now = q.clock.now();
    if (!this.mayHandOff(level, baseOffset, now)) return null;
    const l = q.state.levels[level];
    assert(l.endOffset <= baseOffset, `hand-off at ${level}/${baseOffset} below the durable end ${l.endOffset}`);
    const shares: Share[] = [];
    let i = 0;
    try {
      for (const waiter of [...q.waiters]) {
        const wish = waiter.wish;
        if (wish === null || wish.max < 1) continue;
        if (i >= records.length) break;
        let share: Share | null = null;
        while (i < records.length && (share === null || share.deliveries.length < wish.max)) {
          if (q.state.tracked.size >= QUEUE_DEFAULTS.maxTrackedMessages) break;
          const rec: LogRecord = ownRecord(records[i], baseOffset + i);
          if (recordExpiresAtMs(rec, q.options.ttlMs) <= now) break; // the take's pass expires it
          if (share === null) {
            waiter.claim();
            share = { waiter, leaseMs: wish.leaseMs, deliveries: [], tracked: [] };
            shares.push(share);
          }
          assert(
            !q.state.tracked.has(trackedKey(level, rec.offset)),
            `hand-off of ${level}/${rec.offset}, already tracked`,
          );
          const t = q.state.deliver(level, rec.offset, now, wish.leaseMs, undefined, recordBytes(rec));
          share.tracked.push(t);
          i++;
          const d = new Delivery(q, rec, q.name, this.epoch, t.key, t.token, t.deliveryCount, t.firstDeliveredAt);
          share.deliveries.push(d);
          if (wish.decode) d.decode(true); // the payload may stay a view of ownRecord's copy
        }
        if (share === null) break; // a limit or an expired record stopped it: the rest go the usual way
      }
    } catch (err) {
      // Nothing handed off after all: the leases are taken back and the claimed takers freed.
      for (const share of shares) {
        for (const t of share.tracked) q.state.undeliverAhead(t);
        share.waiter.hand([]);
      }
      throw err;
    }
    if (i === 0) return null;
    l.cursor = baseOffset + i;
    q.state.aheadCount += i;
    const pending = new PendingHandoff(q, this.leases, level, baseOffset, i, shares, () =>
      this.pending.delete(pending),
    );
    this.pending.add(pending);
    q.journal.commit().then(
      () => pending.recorded(true),
      () => pending.recorded(false),
    );
    return pending;
  }

  /** Resolves once every hand-off on its way has ended (the queue is closing: they give their messages back). */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await [...this.pending][0].ended;
  }

  /**
   * Whether the first of records, at baseOffset of level, is what a take would deliver next: its
   * level's cursor is at the log end (nothing of the level ready or being appended ahead of it),
   * nothing is visible for redelivery, no timer or delayed message is due (a take handles those
   * first), no higher level has anything ready or on its way, no take or other locked step runs,
   * and the queue is not FIFO (groups need the take's passes).
   */
  private mayHandOff(level: number, baseOffset: number, now: number): boolean {
    const q = this.q;
    if (q.closed || q.options.fifo || q.isLocked() || q.hasDueWork(now)) return false;
    const s = q.state;
    if (s.nextCursorOffset(level) !== baseOffset) return false;
    for (let i = 0; i < s.levels.length; i++) {
      if (s.visible[i].length > 0) return false;
      if (i > level && s.nextCursorOffset(i) < q.log(i).endOffset) return false;
    }
    return true;
  }
}

/**
 * A hand-off between its offer and its end: the append and the delivery records on their way to
 * disk. Ends when both are durable (the waiters get their deliveries, the leases start), or when
 * either failed, or the queue closed meanwhile (the waiters get nothing).
 */
export class PendingHandoff {
  private appendDone: boolean | null = null;
  private recordDone: boolean | null = null;
  private endNow!: () => void;
  /** Resolves when the hand-off has ended. */
  readonly ended = new Promise<void>((resolve) => (this.endNow = resolve));

  constructor(
    private readonly q: HandoffHost,
    private readonly leases: LeaseBook,
    private readonly level: number,
    private readonly baseOffset: number,
    /** Records handed off: the first `count` of the append. */
    readonly count: number,
    private readonly shares: Share[],
    private readonly onEnd: () => void,
  ) {}

  /** The append is durable and the level's end offset has moved past it (or the append failed). */
  appended(ok: boolean): void {
    assert(this.appendDone === null, 'a hand-off hears of its append once');
    this.appendDone = ok;
    this.q.state.aheadCount -= this.count;
    assert(this.q.state.aheadCount >= 0, 'aheadCount never goes below zero');
    if (ok) {
      const end = this.q.state.levels[this.level].endOffset;
      assert(
        end >= this.baseOffset + this.count,
        `hand-off append durable, end ${end} short of ${this.baseOffset + this.count}`,
      );
    } else this.undo();
    this.maybeEnd();
  }

  recorded(ok: boolean): void {
    this.recordDone = ok;
    this.maybeEnd();
  }

  /**
   * The log did not take these offsets: the leases are taken back as if never made (a failed log
   * takes no more appends, so the offsets are not reused while this process runs).
   */
  private undo(): void {
    const s = this.q.state;
    this.eachCurrent((t) => s.undeliverAhead(t));
    const l = s.levels[this.level];
    l.cursor = Math.min(l.cursor, this.baseOffset);
  }

  private maybeEnd(): void {
    if (this.appendDone === false) return this.end(false);
    if (this.appendDone === null || this.recordDone === null) return;
    if (!this.recordDone || this.q.closed) {
      // Nobody got them: back to the queue uncounted (a failed delivery record, or a queue closing),
      // as a consumer that closes before its handler ran gives its messages back.
      const s = this.q.state;
      const now = this.q.clock.now();
      this.eachCurrent((t) => {
        s.requeue(t, now, -1);
        s.makeVisible(t);
      });
      return this.end(false);
    }
    this.end(true);
  }

  private end(deliver: boolean): void {
    const s = this.q.state;
    const now = this.q.clock.now();
    let delivered = 0;
    for (const share of this.shares) {
      const out: Delivery[] = [];
      if (deliver) {
        share.tracked.forEach((t, i) => {
          if (!isCurrent(s, t, share.deliveries[i])) return; // settled meanwhile (purge)
          t.dueMs = now + share.leaseMs; // the lease runs from the hand-over, as a take's from its return
          this.leases.add(t, t.dueMs);
          out.push(share.deliveries[i]);
        });
      }
      delivered += out.length;
      share.waiter.hand(out);
    }
    if (delivered > 0) {
      this.leases.close();
      this.q.rates.deliver.add(delivered, now);
    }
    if (!deliver && !this.q.closed) this.q.notify(); // messages given back: other takers may want them
    this.onEnd();
    this.endNow();
  }

  private eachCurrent(fn: (t: Tracked) => void): void {
    const s = this.q.state;
    for (const share of this.shares) share.tracked.forEach((t, i) => isCurrent(s, t, share.deliveries[i]) && fn(t));
  }
}

/** Whether t is still leased as d, and its lease not yet started (nothing settled or re-leased it meanwhile). */
function isCurrent(s: QueueState, t: Tracked, d: Delivery): boolean {
  return s.tracked.get(t.key) === t && t.state === 'inflight' && t.token === d.receiptToken && t.leaseBatch === 0;
}
