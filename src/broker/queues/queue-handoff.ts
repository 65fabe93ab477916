// Hand-off: a message published while a consumer waits with room is leased to that consumer as it
// is appended, and its delivery record is journaled while the append is fsynced, instead of after
// it. The consumer gets it once both are durable: one fsync round on the path from publish to
// delivery instead of two, and no read of the record back from the log.
//
// Only a message that is next in line anyway is handed off: its level's cursor is at the log end
// (nothing of that level ready or being appended ahead of it), nothing is visible for redelivery,
// no higher level has anything ready, no take or other locked step is running, and the queue is
// not FIFO (groups need the take's passes). Anything else goes the usual way: durable, then
// notify, then take.
//
// The delivery record may be durable while the append is not (a crash between the two fsyncs, or a
// failed append): recovery drops a tracked message whose offset the log never got, and snapshots
// before the log's end offset is used again (queue-recovery.ts, QueueEngine.recover).
import { assert, type Clock } from '../../common/index.js';
import type { LogRecord, PartitionLog, RecordInput } from '../../storage/index.js';
import { Delivery, type DeliverySettler } from './delivery.js';
import type { LeaseBook } from './lease-book.js';
import { QUEUE_DEFAULTS, type ResolvedQueueOptions } from './queue-config.js';
import { recordBytes, recordExpiresAtMs } from './queue-record.js';
import type { QueueState, Tracked } from './queue-state.js';
import type { RateWindow } from './rate-window.js';

/** What a waiting taker would accept from a publish: as many messages as take(max, leaseMs, decode) would return. */
export interface TakeWish {
  max: number;
  leaseMs: number;
  /** false: deliveries keep their stored record (consumeStored). */
  decode: boolean;
}

const NO_MESSAGES: Delivery[] = [];

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
    private readonly waiters: Set<Waiter>,
  ) {}

  /** Arms the timeout (after construction, so the timer can call wake). */
  armTimeout(clock: Clock, waitMs: number): void {
    this.#timer = clock.setTimer(waitMs, () => this.wake());
  }

  /** Resolves with no messages unless already resolved or claimed. */
  wake(): void {
    if (this.#done) return;
    this.#stop();
    this.resolve(NO_MESSAGES);
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
  readonly waiters: Set<Waiter>;
  readonly rates: { readonly deliver: RateWindow };
  readonly journal: { commit(): Promise<void> };
  log(level: number): PartitionLog;
  /** True while a take or another locked step runs or waits to run. */
  isLocked(): boolean;
  /** True when delayed messages are due to move into their levels (a take moves them first). */
  hasDueDelayed(nowMs: number): boolean;
}

/** One waiter's share of a hand-off. */
interface Share {
  waiter: Waiter;
  leaseMs: number;
  deliveries: Delivery[];
  tracked: Tracked[];
  tokens: number[];
}

export class Handoff {
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
    const shares: Share[] = [];
    let i = 0;
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
          share = { waiter, leaseMs: wish.leaseMs, deliveries: [], tracked: [], tokens: [] };
          shares.push(share);
        }
        const t = q.state.deliver(level, rec.offset, now, wish.leaseMs, undefined, recordBytes(rec));
        const d = new Delivery(q, rec, q.name, this.epoch, t.key, t.token, t.deliveryCount, t.firstDeliveredAt);
        if (wish.decode) d.decode(true); // the payload may stay a view of ownRecord's copy
        share.deliveries.push(d);
        share.tracked.push(t);
        share.tokens.push(t.token);
        i++;
      }
      if (share === null) break; // a limit or an expired record stopped it: the rest go the usual way
    }
    if (i === 0) return null;
    l.cursor = baseOffset + i;
    q.state.aheadCount += i;
    const pending = new PendingHandoff(q, this.leases, level, baseOffset, i, shares);
    q.journal.commit().then(
      () => pending.recorded(true),
      () => pending.recorded(false),
    );
    return pending;
  }

  private mayHandOff(level: number, baseOffset: number, now: number): boolean {
    const q = this.q;
    if (q.closed || q.options.fifo || q.isLocked() || q.hasDueDelayed(now)) return false;
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
 * either failed.
 */
export class PendingHandoff {
  private appendDone: boolean | null = null;
  private recordDone: boolean | null = null;
  private ended = false;

  constructor(
    private readonly q: HandoffHost,
    private readonly leases: LeaseBook,
    private readonly level: number,
    private readonly baseOffset: number,
    private readonly count: number,
    private readonly shares: Share[],
  ) {}

  /** The append is durable and the level's end offset has moved past it (or the append failed). */
  appended(ok: boolean): void {
    assert(this.appendDone === null, 'a hand-off hears of its append once');
    this.appendDone = ok;
    this.q.state.aheadCount -= this.count;
    if (!ok) this.undo();
    this.maybeEnd();
  }

  recorded(ok: boolean): void {
    this.recordDone = ok;
    this.maybeEnd();
  }

  /**
   * The log never got these offsets: the leases are taken back as if never made (a failed log
   * takes no more appends, so the offsets are not reused while this process runs).
   */
  private undo(): void {
    const s = this.q.state;
    for (const share of this.shares) {
      share.tracked.forEach((t, i) => {
        if (isCurrent(s, t, share.tokens[i])) s.undeliverAhead(t);
      });
    }
    const l = s.levels[this.level];
    l.cursor = Math.min(l.cursor, this.baseOffset);
  }

  private maybeEnd(): void {
    if (this.ended) return;
    if (this.appendDone === false) return this.endEach(() => NO_MESSAGES);
    if (this.appendDone === null || this.recordDone === null) return;
    const s = this.q.state;
    const now = this.q.clock.now();
    if (!this.recordDone) {
      // As a take whose journal commit failed: the leases run out and the messages are delivered again.
      for (const share of this.shares) share.tracked.forEach((t, i) => isCurrent(s, t, share.tokens[i]) && this.leases.add(t, now + share.leaseMs));
      this.leases.close();
      return this.endEach(() => NO_MESSAGES);
    }
    let delivered = 0;
    this.endEach((share) => {
      const out: Delivery[] = [];
      share.tracked.forEach((t, i) => {
        if (!isCurrent(s, t, share.tokens[i])) return; // settled meanwhile (purge)
        t.dueMs = now + share.leaseMs; // the lease runs from the hand-over, as a take's from its return
        this.leases.add(t, t.dueMs);
        out.push(share.deliveries[i]);
      });
      delivered += out.length;
      return out;
    });
    this.leases.close();
    if (delivered > 0) this.q.rates.deliver.add(delivered, now);
  }

  private endEach(deliveriesOf: (share: Share) => Delivery[]): void {
    this.ended = true;
    for (const share of this.shares) share.waiter.hand(deliveriesOf(share));
  }
}

function isCurrent(s: QueueState, t: Tracked, token: number): boolean {
  return s.tracked.get(t.key) === t && t.state === 'inflight' && t.token === token && t.leaseBatch === 0;
}

/**
 * The record as the delivery keeps it, with its offset. The payload is copied: the publisher's
 * bytes may be reused once publish() returns, and the log has its own copy already.
 */
function ownRecord(r: RecordInput, offset: number): LogRecord {
  let value: Uint8Array | null = null;
  if (r.value !== null) {
    value = new Uint8Array(r.value.length);
    value.set(r.value);
  }
  return { key: r.key, value, headers: r.headers, timestampMs: r.timestampMs, offset };
}
