// One queue: its per-priority logs, its delay log and its state journal; leases, retries,
// dead-lettering, long polls and backpressure. Storage is reached only through PartitionLog and
// Journal. Publishing lives in queue-publish.ts, the passes of a take in queue-take.ts, settling
// deliveries (ack, nack, dead letters, expiry) in queue-settle.ts, delayed messages in
// queue-delay.ts, opening after a restart in queue-recovery.ts and stats in queue-stats.ts; this
// file owns the delivery lock, appends, time and the queue's lifecycle.
//
// Call flow: publish -> append to the level's log -> (durable) endOffset moves, waiters wake.
// receive -> take(): under the delivery mutex, redeliveries first, then FIFO-held heads, then the
// log cursor, highest level first (QueueTaker.takeAll) -> one journal commit for the whole batch ->
// messages returned.
// A publish that finds a taker waiting with room hands its messages over as it appends them
// (queue-handoff.ts): delivery records journaled alongside the append, no take.
import { randomBytes } from 'node:crypto';
import { ChurnSet, WharfError, assert, type Clock } from '../../common/index.js';
import type { Journal, LogRecord, PartitionLog, RecordInput } from '../../storage/index.js';
import type { NackOptions, QueueStats } from '../queue-types.js';
import type { Delivery } from './delivery.js';
import { JournalWriter } from './queue-journal.js';
import { LeaseBook } from './lease-book.js';
import { QUEUE_DEFAULTS, type ResolvedQueueOptions } from './queue-config.js';
import { DELAY_TIMER_KEY, DelayedMessages } from './queue-delay.js';
import { recoverState } from './queue-recovery.js';
import { DELAY_LEVEL, QueueState, type Tracked } from './queue-state.js';
import { type DeadLetterReason, deadLetterRecord, recordBytes, recordPriority } from './queue-record.js';
import {
  ackByReceiptPosition,
  ackTracked,
  byReceipt,
  current,
  currentLease,
  deadLetterTracked,
  dueTracked,
  expire,
  extendTracked,
  nackTracked,
  releaseTracked,
  settleTracked,
} from './queue-settle.js';
import { queueStats, readyCount } from './queue-stats.js';
import { QueueTaker } from './queue-take.js';
import { Handoff, highestLevelFirst, type TakeWish, Waiter } from './queue-handoff.js';
import { RateWindow } from './rate-window.js';
import type { ByteBudget } from './recent-appends.js';
import { TimerHeap } from './timer-heap.js';

/** What a queue needs from its manager: time, and appends to other queues (dead letters). */
export interface QueueHost {
  clock: Clock;
  appendTo(queue: string, records: RecordInput[]): Promise<void>;
  depthOf(queue: string): number;
  /** Shared by the broker's queues: what their recent appends may hold (recent-appends.ts). */
  recentAppendsBudget: ByteBudget;
}

export interface QueueStorage {
  logs: PartitionLog[];
  delayLog: PartitionLog;
  journal: Journal;
  /** Reads return buffers owned by the caller (disk), so payloads may be views instead of copies. */
  shareReadBuffers: boolean;
}

export class QueueEngine {
  readonly state: QueueState;
  /** Messages published with a delay, waiting in the delay log (queue-delay.ts). */
  readonly delayed: DelayedMessages;
  readonly journal: JournalWriter;
  /** Lease, retry and delay timers, due in onDue; settlement (queue-settle.ts) sets and ends leases and retries. */
  readonly timers: TimerHeap<number>;
  readonly leases: LeaseBook;
  /** The passes of a take and the lease of each message taken (queue-take.ts). */
  private readonly taker: QueueTaker;
  /** Names this run of the queue in receipts (a receipt from before a restart is refused). */
  readonly epoch = randomBytes(4).toString('hex');
  private mutex: Promise<unknown> = Promise.resolve();
  /** Steps queued or running under the mutex (a hand-off waits until there are none). */
  private lockedSteps = 0;
  /** Long polls and idle consumers waiting for work (queue-handoff.ts). */
  readonly waiters = new ChurnSet<Waiter>();
  /** Publishes handing messages straight to waiting takers. */
  private readonly handoff: Handoff;
  /** Publishers blocked by overflow 'block', woken when messages settle. */
  readonly roomWaiters = new Set<() => void>();
  /** Unsettled bytes in all logs (estimated after a restart, exact for changes since). */
  bytes = 0;
  closed = false;
  /** Found by recover(), in state settling until deadLetterRecovered() writes them. */
  private recoveredDeadLetters: Tracked[] = [];
  private snapshotting = false;
  private snapshotDone: Promise<void> = Promise.resolve();
  /** Counts since open; receiveErrors: takes that failed, deadLetterErrors: dead letters not written. */
  readonly counters = { deadLettered: 0, expired: 0, dropped: 0, receiveErrors: 0, deadLetterErrors: 0 };
  readonly rates: Record<'publish' | 'deliver' | 'ack' | 'nack' | 'error', RateWindow>;

  constructor(
    readonly name: string,
    readonly options: ResolvedQueueOptions,
    readonly store: QueueStorage,
    readonly host: QueueHost,
  ) {
    // A take stops at maxTrackedMessages (queue-take.ts): a long poll that met the limit waits for
    // room, so forgetting a tracked message at the limit (ack, expiry, purge) wakes it.
    this.state = new QueueState(options.priorities, (trackedCountBefore) => {
      if (trackedCountBefore >= QUEUE_DEFAULTS.maxTrackedMessages) this.notify();
    });
    this.journal = new JournalWriter(store.journal, () => this.state.takeOps());
    this.timers = new TimerHeap<number>(host.clock, (keys) => this.onDue(keys));
    this.leases = new LeaseBook(this.timers);
    this.delayed = new DelayedMessages(this, this.timers);
    this.taker = new QueueTaker(
      this,
      this.leases,
      this.epoch,
      (rec, level, t) => expire(this, rec, level, t),
      host.recentAppendsBudget,
    );
    this.handoff = new Handoff(this, this.leases, this.epoch);
    const now = host.clock.now();
    this.rates = {
      publish: new RateWindow(now),
      deliver: new RateWindow(now),
      ack: new RateWindow(now),
      nack: new RateWindow(now),
      error: new RateWindow(now),
    };
  }

  get clock(): Clock {
    return this.host.clock;
  }

  /**
   * Rebuilds state from the journal (snapshot + ops) and the logs. Leases open when the broker
   * stopped are failed deliveries: visible again, or (at maxDeliveries) dead-lettered by
   * deadLetterRecovered().
   */
  async recover(): Promise<void> {
    const { estimatedBytes, droppedBeyondEnd, deadLetters } = await recoverState(this, this.timers);
    this.recoveredDeadLetters = deadLetters;
    this.bytes += estimatedBytes;
    await this.delayed.scan();
    this.delayed.arm();
    // Journaled state for offsets the log does not have (a hand-off's delivery record, a lost
    // tail's settles) would apply to the next messages appended there: a snapshot replaces it
    // before any append, and a failed rewrite fails the open.
    if (droppedBeyondEnd) await this.journal.rewrite(() => this.state.snapshot());
    this.maybeSnapshot();
  }

  /**
   * Dead-letters what recover() found at maxDeliveries with its lease open, as an expired lease's
   * last delivery is (durably: the dead letter, then the settle op). Called once every queue of the
   * broker is open, since the dead-letter queue is another. A dead letter that cannot be written
   * leaves its message visible again, as on expiry.
   */
  deadLetterRecovered(): Promise<void> {
    const deadLetters = this.recoveredDeadLetters;
    this.recoveredDeadLetters = [];
    if (deadLetters.length === 0) return Promise.resolve();
    return this.locked(async () => {
      for (const t of deadLetters) await deadLetterTracked(this, t, 'max-deliveries').catch(() => undefined);
    });
  }

  /** Runs fn alone: deliveries, drops, delay moves and purges never interleave. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    this.lockedSteps++;
    const run = this.mutex.then(fn).finally(() => this.lockedSteps--);
    this.mutex = run.catch(() => undefined);
    return run;
  }

  // HandoffHost
  isLocked(): boolean {
    return this.lockedSteps > 0;
  }

  hasDueWork(nowMs: number): boolean {
    return this.delayed.hasWork(nowMs) || this.timers.peekDueMs() <= nowMs;
  }

  log(level: number): PartitionLog {
    return level === DELAY_LEVEL ? this.store.delayLog : this.store.logs[level];
  }

  async readOne(level: number, offset: number): Promise<LogRecord | null> {
    const recs = await this.log(level).read(offset, { maxBytes: 1, maxRecords: 1 });
    return recs.length > 0 && recs[0].offset === offset ? recs[0] : null;
  }

  levelFor(rec: { headers: RecordInput['headers'] }): number {
    // Clamped to the queue's levels (RabbitMQ's rule); not `| 0`, which sent 2^31 and above to level 0.
    const p = recordPriority(rec);
    return Number.isFinite(p) ? Math.min(this.options.priorities - 1, Math.max(0, Math.floor(p))) : 0;
  }

  // ------------------------------------------------------------------ appends

  /**
   * Appends records to a level's log; the state sees them once durable, and onStored runs in that
   * same step. Waiting takers may be handed some of them as they are appended (queue-handoff.ts).
   */
  async appendLevel(level: number, records: RecordInput[], sizeBytes: number, onStored?: () => void): Promise<number> {
    const log = this.log(level);
    const baseOffset = log.endOffset;
    const appended = log.append(records);
    // Offsets were assigned when endOffset moved now (a refused append moves nothing).
    const assigned = level !== DELAY_LEVEL && log.endOffset === baseOffset + records.length;
    const handoff = assigned && this.waiters.size > 0 ? this.handoff.offer(level, baseOffset, records) : null;
    // What was not handed off, copied now (the caller's bytes are valid only until this returns)
    // for the next take, if anything is taking from this queue.
    const handed = handoff?.count ?? 0;
    const recent = this.taker.recent;
    const kept =
      assigned && handed < records.length && recent.wanted() ? recent.copy(records, handed, baseOffset) : null;
    let res;
    try {
      res = await appended;
    } catch (err) {
      handoff?.appended(false);
      if (kept !== null) recent.drop(kept);
      throw err;
    }
    const l = this.state.level(level);
    l.endOffset = Math.max(l.endOffset, res.lastOffset + 1);
    this.bytes += sizeBytes;
    onStored?.();
    handoff?.appended(true);
    if (kept !== null) {
      if (this.closed) recent.drop(kept);
      else recent.keep(level, kept);
    }
    return res.baseOffset;
  }

  /** Dead letters and redriven messages: appended without backpressure or dedup. */
  async appendRecords(records: RecordInput[]): Promise<void> {
    this.assertOpen();
    const byLevel = new Map<number, RecordInput[]>();
    for (const r of records) {
      const level = this.levelFor(r);
      if (!byLevel.has(level)) byLevel.set(level, []);
      byLevel.get(level)!.push(r);
    }
    await Promise.all(
      highestLevelFirst(byLevel).map(([level, recs]) =>
        this.appendLevel(
          level,
          recs,
          recs.reduce((n, r) => n + recordBytes(r), 0),
        ),
      ),
    );
    this.rates.publish.add(records.length, this.clock.now());
    this.notify();
  }

  // ------------------------------------------------------------------ delivery

  /**
   * Leases up to max ready messages (one journal commit for the batch), decoded into their message
   * fields unless `decode` is false (a delivery then carries its stored record: consumeStored).
   */
  take(max: number, leaseMs: number, decode = true): Promise<Delivery[]> {
    return this.locked(async () => {
      if (this.closed) return [];
      let out: Delivery[];
      try {
        this.processDue();
        if (this.delayed.hasWork(this.clock.now())) await this.delayed.moveDue();
        out = await this.taker.takeAll(max, leaseMs);
        if (out.length > 0) {
          this.rates.deliver.add(out.length, this.clock.now());
          await this.journal.commit();
        }
      } catch (err) {
        this.counters.receiveErrors++;
        throw err;
      }
      if (decode) for (let i = 0; i < out.length; i++) out[i].decode(this.store.shareReadBuffers);
      return out;
    });
  }

  // ------------------------------------------------------------------ settlement (queue-settle.ts)

  // DeliverySettler: a Delivery settles by its numbers, without parsing its receipt.
  ackDelivery(key: number, token: number, receipt: string): Promise<void> {
    let t: Tracked;
    try {
      t = current(this, key, token, receipt);
    } catch (err) {
      return Promise.reject(err);
    }
    return ackTracked(this, t);
  }

  async nackDelivery(key: number, token: number, receipt: string, options: NackOptions | undefined): Promise<void> {
    return nackTracked(this, current(this, key, token, receipt), options);
  }

  async extendDelivery(key: number, token: number, receipt: string, ms: number): Promise<void> {
    return extendTracked(this, current(this, key, token, receipt), ms);
  }

  holdsLease(key: number, token: number): boolean {
    return !this.closed && currentLease(this, key, token) !== undefined;
  }

  // for exchanges: transactions validate acks before committing, and settle by position at
  // apply time so the roll-forward after a restart (new epoch, leases gone) still acks the message.
  checkReceipt(receipt: string): void {
    byReceipt(this, receipt);
  }

  /** Settles the message the receipt points at, lease or not; a no-op when already settled. */
  ackByReceiptPosition(receipt: string): Promise<void> {
    return ackByReceiptPosition(this, receipt);
  }

  async ack(receipt: string): Promise<void> {
    return ackTracked(this, byReceipt(this, receipt));
  }

  async nack(receipt: string, o: NackOptions = {}): Promise<void> {
    return nackTracked(this, byReceipt(this, receipt), o);
  }

  async extendVisibility(receipt: string, ms: number): Promise<void> {
    return extendTracked(this, byReceipt(this, receipt), ms);
  }

  /** Hands a leased message back without counting the delivery (consumer closing before its handler ran). */
  async release(receipt: string): Promise<void> {
    return releaseTracked(this, byReceipt(this, receipt));
  }

  // TakeHost: a message a take finds gone from its log.
  settleTracked(t: Tracked): void {
    settleTracked(this, t);
  }

  facts(reason: DeadLetterReason, t: Tracked | undefined): Parameters<typeof deadLetterRecord>[1] {
    return {
      reason,
      error: t?.lastError,
      deliveryCount: t?.deliveryCount ?? 0,
      sourceQueue: this.name,
      firstDeliveredAt: t?.firstDeliveredAt ?? 0,
      lastDeliveredAt: t?.lastDeliveredAt ?? 0,
      nowMs: this.clock.now(),
    };
  }

  // ------------------------------------------------------------------ time: leases, retries, delays (moves: queue-delay.ts)

  private onDue(keys: number[]): void {
    const now = this.clock.now();
    for (const key of keys) {
      if (key === DELAY_TIMER_KEY) {
        void this.locked(() => this.delayed.moveDue()).catch(() => undefined);
      } else if (LeaseBook.isBatchKey(key)) {
        this.leases.takeDue(key, (trackedKey, token) => {
          const t = this.state.tracked.get(trackedKey);
          if (t === undefined || t.token !== token || t.leaseBatch !== key) return; // settled or leased again since
          t.leaseBatch = 0;
          dueTracked(this, t, now);
        });
      } else {
        const t = this.state.tracked.get(key);
        if (t !== undefined) dueTracked(this, t, now);
      }
    }
    this.notify();
  }

  private processDue(): void {
    const keys = this.timers.popDue(this.clock.now());
    if (keys.length > 0) this.onDue(keys);
  }

  // ------------------------------------------------------------------ waiting

  /** Wakes long polls and idle consumers (new or newly visible messages). */
  notify(): void {
    if (this.waiters.size === 0) return;
    for (const w of [...this.waiters]) w.wake();
  }

  roomFreed(): void {
    if (this.roomWaiters.size === 0) return; // every ack comes here: no array for nobody
    for (const w of [...this.roomWaiters]) w();
  }

  /**
   * Resolves with no messages on notify(), after waitMs, or when cancelled (isCancelled.wake). With
   * a wish, a publish may instead hand the caller the messages it would have taken (queue-handoff.ts):
   * leased to it, as take(wish.max, wish.leaseMs, wish.decode) returns them.
   */
  waitForWork(
    waitMs: number,
    isCancelled?: { cancelled: boolean; wake?: () => void },
    wish?: TakeWish,
  ): Promise<Delivery[]> {
    return new Promise((resolve) => {
      const w = new Waiter(wish ?? null, resolve, this.waiters);
      this.waiters.add(w);
      w.armTimeout(this.clock, waitMs);
      if (isCancelled !== undefined) isCancelled.wake = () => w.wake();
    });
  }

  // ------------------------------------------------------------------ snapshots, truncation, purge, stats (queue-stats.ts)

  /** Once the journal is large: snapshot it, then delete segments whose messages are all settled. */
  maybeSnapshot(force = false): Promise<void> {
    if (this.snapshotting || (!force && this.journal.sizeBytes < QUEUE_DEFAULTS.snapshotJournalBytes))
      return this.snapshotDone;
    this.snapshotting = true;
    const lows: number[] = [];
    this.snapshotDone = this.journal
      .rewrite(() => {
        const levels = [...this.state.levels, this.state.delay];
        levels.forEach((l) => lows.push(l.settled.firstGapFrom(l.startOffset)));
        return this.state.snapshot();
      })
      .then(async () => {
        const levels = [...this.store.logs.map((_, i) => i), DELAY_LEVEL];
        for (let i = 0; i < levels.length; i++) {
          const log = this.log(levels[i]);
          if (lows[i] > log.startOffset) await log.truncateBefore(lows[i]);
          const l = this.state.level(levels[i]);
          l.startOffset = log.startOffset;
          l.settled.dropBelow(log.startOffset);
        }
      })
      .catch(() => undefined)
      .finally(() => {
        this.snapshotting = false;
      });
    return this.snapshotDone;
  }

  purge(): Promise<number> {
    return this.locked(async () => {
      let n = 0;
      // Before the settles, which forget the tracked messages whose timers these are.
      for (const t of this.state.tracked.values()) this.timers.cancel(t.key);
      for (const level of [...this.store.logs.map((_, i) => i), DELAY_LEVEL]) {
        const l = this.state.level(level);
        n += this.state.unsettledIn(level);
        this.state.settleRange(level, l.startOffset, l.endOffset);
      }
      this.leases.clear();
      this.delayed.reset();
      this.taker.clearReadAhead();
      this.bytes = 0;
      await this.journal.commit();
      this.roomFreed();
      return n;
    });
  }

  stats(): Promise<QueueStats> {
    return queueStats(this);
  }

  /** Ready messages (what receive could return). */
  depth(): number {
    return readyCount(this.state);
  }

  assertOpen(): void {
    if (this.closed)
      throw new WharfError('CLOSED', `queue ${JSON.stringify(this.name)} is closed (broker closing or queue deleted)`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.locked(async () => {
      this.closed = true;
      this.taker.clearReadAhead();
    });
    this.notify();
    this.roomFreed();
    await this.handoff.drain(); // hand-offs on their way give their messages back (closed)
    this.timers.close();
    await this.journal.drain();
    await this.snapshotDone; // one started by an ack, if any
    // A snapshot at close makes the next open read one entry instead of the whole history.
    await this.maybeSnapshot(true);
    assert(!this.snapshotting, 'snapshot finished before close');
    await Promise.all([...this.store.logs.map((l) => l.close()), this.store.delayLog.close()]);
    await this.store.journal.close();
  }
}
