// One queue: its per-priority logs, its delay log and its state journal; leases, retries,
// dead-lettering, long polls and backpressure. Storage is reached only through PartitionLog and
// Journal. Publishing lives in queue-publish.ts, the passes of a take in queue-take.ts, delayed
// messages in queue-delay.ts, opening after a restart in queue-recovery.ts and stats in
// queue-stats.ts; this file owns the delivery lock, settlement and time.
//
// Call flow: publish -> append to the level's log -> (durable) endOffset moves, waiters wake.
// receive -> take(): under the delivery mutex, redeliveries first, then FIFO-held heads, then the
// log cursor, highest level first -> one journal commit for the whole batch -> messages returned.
// A publish that finds a taker waiting with room hands its messages over as it appends them
// (queue-handoff.ts): delivery records journaled alongside the append, no take.
import { randomBytes } from 'node:crypto';
import { ChurnSet, LIMITS, WharfError, assert, checkOptionFields, type Clock } from '../../common/index.js';
import type { Journal, LogRecord, PartitionLog, RecordInput } from '../../storage/index.js';
import { NACK_OPTION_FIELDS, type NackOptions, type QueueStats } from '../queue-types.js';
import type { Delivery } from './delivery.js';
import { JournalWriter } from './queue-journal.js';
import { LeaseBook } from './lease-book.js';
import { QUEUE_DEFAULTS, type ResolvedQueueOptions } from './queue-config.js';
import { DELAY_TIMER_KEY, DelayedMessages } from './queue-delay.js';
import { recoverState } from './queue-recovery.js';
import { DELAY_LEVEL, QueueState, trackedLevel, trackedOffset, type Tracked } from './queue-state.js';
import { type DeadLetterReason, deadLetterRecord, recordBytes, recordPriority } from './queue-record.js';
import { queueStats, readyCount } from './queue-stats.js';
import { QueueTaker } from './queue-take.js';
import { Handoff, highestLevelFirst, type TakeWish, Waiter } from './queue-handoff.js';
import { RateWindow } from './rate-window.js';
import type { ByteBudget } from './recent-appends.js';
import { retryDelayMs } from './retry.js';
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
  private readonly timers: TimerHeap<number>;
  private readonly leases: LeaseBook;
  /** The passes of a take and the lease of each message taken (queue-take.ts). */
  private readonly taker: QueueTaker;
  private readonly epoch = randomBytes(4).toString('hex');
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
  readonly counters = { deadLettered: 0, expired: 0, dropped: 0 };
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
      (rec, level, t) => this.expire(rec, level, t),
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
      for (const t of deadLetters) await this.deadLetterTracked(t, 'max-deliveries').catch(() => undefined);
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
      this.processDue();
      if (this.delayed.hasWork(this.clock.now())) await this.delayed.moveDue();
      const out: Delivery[] = [];
      try {
        for (let level = this.options.priorities - 1; level >= 0 && out.length < max; level--) {
          await this.taker.takeRedeliveries(level, max, leaseMs, out);
          if (level === 0 && this.options.fifo) await this.taker.takeHeld(max, leaseMs, out);
          await this.taker.takeFromCursor(level, max, leaseMs, out);
        }
      } finally {
        this.leases.close();
      }
      if (out.length > 0) {
        this.rates.deliver.add(out.length, this.clock.now());
        await this.journal.commit();
      }
      if (decode) for (let i = 0; i < out.length; i++) out[i].decode(this.store.shareReadBuffers);
      return out;
    });
  }

  // ------------------------------------------------------------------ settlement

  /** The current delivery a receipt names, or RECEIPT_INVALID. */
  private byReceipt(receipt: string): Tracked {
    const parts = typeof receipt === 'string' ? receipt.split(':') : [];
    const key = parts.length === 3 && parts[0] === this.epoch ? Number(parts[1]) : -1;
    const token = parts.length === 3 ? Number(parts[2]) : -1;
    return this.current(key, token, receipt);
  }

  /** The tracked message of delivery (key, token) if that delivery is still the current lease. */
  private current(key: number, token: number, receipt: string): Tracked {
    this.assertOpen();
    const t = this.state.tracked.get(key);
    if (t === undefined || t.state !== 'inflight' || t.token !== token) {
      throw new WharfError(
        'RECEIPT_INVALID',
        `receipt ${JSON.stringify(receipt)} of queue ${JSON.stringify(this.name)} is not the current delivery (already settled, lease expired, or from before a restart); the message is or will be delivered again: settle that delivery instead`,
      );
    }
    return t;
  }

  // DeliverySettler: a Delivery settles by its numbers, without parsing its receipt.
  ackDelivery(key: number, token: number, receipt: string): Promise<void> {
    let t: Tracked;
    try {
      t = this.current(key, token, receipt);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.ackTracked(t);
  }

  async nackDelivery(key: number, token: number, receipt: string, options: NackOptions | undefined): Promise<void> {
    return this.nackTracked(this.current(key, token, receipt), options);
  }

  async extendDelivery(key: number, token: number, receipt: string, ms: number): Promise<void> {
    return this.extendTracked(this.current(key, token, receipt), ms);
  }

  // for exchanges: transactions validate acks before committing, and settle by position at
  // apply time so the roll-forward after a restart (new epoch, leases gone) still acks the message.
  checkReceipt(receipt: string): void {
    this.byReceipt(receipt);
  }

  /** Settles the message the receipt points at, lease or not; a no-op when already settled. */
  async ackByReceiptPosition(receipt: string): Promise<void> {
    this.assertOpen();
    const key = Number(String(receipt).split(':')[1]);
    if (!Number.isSafeInteger(key) || key < 0)
      throw new WharfError('RECEIPT_INVALID', `receipt ${JSON.stringify(receipt)} names no message position`);
    const level = trackedLevel(key);
    const offset = trackedOffset(key);
    if (level >= this.state.levels.length) return;
    const l = this.state.level(level);
    if (offset < l.startOffset || offset >= l.endOffset || l.settled.has(offset)) return;
    const t = this.state.tracked.get(key);
    if (t !== undefined) this.settleTracked(t);
    else {
      this.state.settle(level, offset);
      this.roomFreed();
    }
    this.rates.ack.add(1, this.clock.now());
    await this.journal.commit();
    this.maybeSnapshot();
  }

  async ack(receipt: string): Promise<void> {
    return this.ackTracked(this.byReceipt(receipt));
  }

  /** Not async: every ack of one event-loop turn shares the journal commit's promise. */
  private ackTracked(t: Tracked): Promise<void> {
    this.settleTracked(t);
    this.rates.ack.add(1, this.clock.now());
    void this.maybeSnapshot(); // a snapshot started here already holds this settle (memory is ahead of the journal)
    return this.journal.commit();
  }

  async nack(receipt: string, o: NackOptions = {}): Promise<void> {
    return this.nackTracked(this.byReceipt(receipt), o);
  }

  private async nackTracked(t: Tracked, o: NackOptions = {}): Promise<void> {
    // Every nack (a message's own, by receipt, stored) comes here: refused before anything changes.
    checkOptionFields(o, NACK_OPTION_FIELDS, 'nack option', '{ delayMs: 1000 }');
    if (o.delayMs !== undefined) checkDelayMs(o.delayMs); // before the nack is counted
    if (o.requeue !== undefined && typeof o.requeue !== 'boolean')
      throw new WharfError(
        'INVALID_ARGUMENT',
        `nack requeue is ${o.requeue === null ? 'null' : typeof o.requeue}: pass true (retry) or false (dead-letter now)`,
      );
    if (o.error !== undefined && typeof o.error !== 'string') {
      // Kept for the dead letter's x-dead-letter-error header, which is text.
      throw new WharfError(
        'INVALID_ARGUMENT',
        `nack error is ${o.error === null ? 'null' : typeof o.error}: pass a string, such as the failure's message`,
      );
    }
    const now = this.clock.now();
    this.rates.nack.add(1, now);
    if (o.error !== undefined) this.rates.error.add(1, now);
    t.lastError = o.error;
    const reason: DeadLetterReason | null =
      o.requeue === false
        ? 'rejected'
        : this.options.maxDeliveries > 0 && t.deliveryCount >= this.options.maxDeliveries
          ? 'max-deliveries'
          : null;
    if (reason !== null) {
      this.beginSettling(t); // before any await: a second settle of this receipt is RECEIPT_INVALID
      return this.deadLetterTracked(t, reason);
    }
    const delayMs = o.delayMs ?? retryDelayMs(this.options.retry, t.deliveryCount);
    checkDelayMs(delayMs);
    this.leases.release(t);
    this.state.requeue(t, now + delayMs);
    if (delayMs === 0) this.state.makeVisible(t);
    else this.timers.schedule(t.key, now + delayMs);
    this.notify();
    await this.journal.commit();
  }

  async extendVisibility(receipt: string, ms: number): Promise<void> {
    return this.extendTracked(this.byReceipt(receipt), ms);
  }

  private async extendTracked(t: Tracked, ms: number): Promise<void> {
    if (!(Number.isSafeInteger(ms) && ms >= 0 && ms <= LIMITS.maxVisibilityTimeoutMs)) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `extendVisibility(${ms}): pass an integer from 0 to ${LIMITS.maxVisibilityTimeoutMs} (maxVisibilityTimeoutMs)`,
      );
    }
    // The lease now ends ms from now (SQS ChangeMessageVisibility); leases are not journaled.
    t.dueMs = this.clock.now() + ms;
    this.leases.extend(t, t.dueMs);
  }

  /** Hands a leased message back without counting the delivery (consumer closing before its handler ran). */
  async release(receipt: string): Promise<void> {
    const t = this.byReceipt(receipt);
    this.leases.release(t);
    this.state.requeue(t, this.clock.now(), -1);
    this.state.makeVisible(t);
    this.notify();
    await this.journal.commit();
  }

  settleTracked(t: Tracked): void {
    this.leases.release(t); // its lease or retry wait, and the timer of either
    this.state.settle(t.level, t.offset);
    this.bytes -= t.bytes;
    this.roomFreed();
    if (this.options.fifo) this.notify(); // the group's next message may go now
  }

  /** Ends the lease of a message about to be dead-lettered (no expiry, no settle by its receipt meanwhile). */
  private beginSettling(t: Tracked): void {
    this.leases.release(t);
    this.state.beginSettling(t);
  }

  /** Whether t is still the tracked message being dead-lettered (a purge may have settled it meanwhile). */
  private stillSettling(t: Tracked): boolean {
    return this.state.tracked.get(t.key) === t && t.state === 'settling';
  }

  /**
   * Moves a message in state settling to the dead-letter queue (or drops it when there is none). If
   * the dead letter cannot be written, the message is visible again rather than stuck, and the
   * error is the caller's.
   */
  private async deadLetterTracked(t: Tracked, reason: DeadLetterReason): Promise<void> {
    if (!this.stillSettling(t)) return;
    try {
      const rec = await this.readOne(t.level, t.offset);
      if (!this.stillSettling(t)) return;
      if (rec !== null && this.options.deadLetterQueue !== undefined) {
        await this.host.appendTo(this.options.deadLetterQueue, [deadLetterRecord(rec, this.facts(reason, t))]);
        this.counters.deadLettered++;
      } else {
        this.counters.dropped++;
      }
    } catch (err) {
      if (this.stillSettling(t)) {
        this.state.makeVisible(t);
        this.notify();
      }
      throw err;
    }
    if (this.stillSettling(t)) this.settleTracked(t);
    await this.journal.commit();
  }

  /** Settles an expired message: dropped, or dead-lettered when the queue asks (onExpire). */
  private async expire(rec: LogRecord, level: number, t: Tracked | undefined): Promise<void> {
    if (this.options.onExpire === 'dead-letter' && this.options.deadLetterQueue !== undefined) {
      await this.host.appendTo(this.options.deadLetterQueue, [deadLetterRecord(rec, this.facts('expired', t))]);
      this.counters.deadLettered++;
      // Acked by position meanwhile (a transaction rolling forward; that takes no lock): settled
      // already, and settling it again would count its bytes off twice.
      if (t !== undefined ? this.state.tracked.get(t.key) !== t : this.state.level(level).settled.has(rec.offset))
        return;
    }
    this.counters.expired++;
    if (t !== undefined) this.settleTracked(t);
    else {
      this.state.settle(level, rec.offset);
      this.bytes -= recordBytes(rec);
      this.roomFreed();
    }
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
          this.due(t, now);
        });
      } else {
        const t = this.state.tracked.get(key);
        if (t !== undefined) this.due(t, now);
      }
    }
    this.notify();
  }

  /** A tracked message's time has come: a retry becomes visible, an expired lease is redelivered or dead-lettered. */
  private due(t: Tracked, now: number): void {
    if (t.dueMs > now) return;
    if (t.state === 'waiting') this.state.makeVisible(t);
    else if (t.state === 'inflight') {
      t.lastError = t.lastError ?? `visibility timeout expired after delivery ${t.deliveryCount}`;
      if (this.options.maxDeliveries > 0 && t.deliveryCount >= this.options.maxDeliveries) {
        this.beginSettling(t); // no longer leased: a late ack must fail
        void this.locked(() => this.deadLetterTracked(t, 'max-deliveries')).catch(() => undefined);
      } else {
        // Whichever timer ended the lease, nothing of it stays: a visible message still in a batch,
        // or with a timer left, could not be leased again (QueueTaker asserts it).
        this.leases.release(t);
        this.state.makeVisible(t);
      }
    }
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

function checkDelayMs(delayMs: number): void {
  if (!(Number.isSafeInteger(delayMs) && delayMs >= 0 && delayMs <= LIMITS.maxDelayMs)) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `nack delayMs ${delayMs} is not an integer from 0 to ${LIMITS.maxDelayMs} (maxDelayMs)`,
    );
  }
}
