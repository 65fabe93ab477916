// Settling one queue's deliveries: receipts checked against the current lease; ack, nack (retry
// or dead-letter), extending and releasing a lease; what a due lease or retry wait becomes; acks by
// position for transactions; dead-lettering and expiry. Apart from queue.ts, which keeps the lock,
// appends, time and lifecycle; functions of the engine (SettleHost) rather than an object of their
// own, so a settle makes the same calls as when they were the engine's methods.
import { LIMITS, WharfError, checkOptionFields, type Clock } from '../../common/index.js';
import type { LogRecord, RecordInput } from '../../storage/index.js';
import { NACK_OPTION_FIELDS, type NackOptions } from '../queue-types.js';
import type { LeaseBook } from './lease-book.js';
import { QUEUE_DEFAULTS, type ResolvedQueueOptions } from './queue-config.js';
import { trackedLevel, trackedOffset, type QueueState, type Tracked } from './queue-state.js';
import { type DeadLetterFacts, type DeadLetterReason, deadLetterRecord, recordBytes } from './queue-record.js';
import type { RateWindow } from './rate-window.js';
import { retryDelayMs } from './retry.js';
import type { TimerHeap } from './timer-heap.js';

/** What settlement needs of its queue (QueueEngine). */
export interface SettleHost {
  readonly name: string;
  readonly options: ResolvedQueueOptions;
  readonly state: QueueState;
  readonly clock: Clock;
  readonly host: { appendTo(queue: string, records: RecordInput[]): Promise<void> };
  /** Names this run of the queue in receipts (a receipt from before a restart is refused). */
  readonly epoch: string;
  readonly leases: LeaseBook;
  readonly timers: TimerHeap<number>;
  readonly journal: { commit(): Promise<void> };
  readonly rates: { readonly ack: RateWindow; readonly nack: RateWindow; readonly error: RateWindow };
  readonly counters: { deadLettered: number; expired: number; dropped: number; deadLetterErrors: number };
  /** Unsettled bytes in all logs: a settle counts its message's off. */
  bytes: number;
  assertOpen(): void;
  readOne(level: number, offset: number): Promise<LogRecord | null>;
  facts(reason: DeadLetterReason, t: Tracked | undefined): DeadLetterFacts;
  /** Wakes long polls and idle consumers. */
  notify(): void;
  /** Wakes publishers blocked by overflow 'block'. */
  roomFreed(): void;
  maybeSnapshot(): Promise<void>;
  /** Runs fn under the queue's delivery lock. */
  locked<T>(fn: () => Promise<T>): Promise<T>;
}

/** The current delivery a receipt names, or RECEIPT_INVALID. */
export function byReceipt(q: SettleHost, receipt: string): Tracked {
  const parts = typeof receipt === 'string' ? receipt.split(':') : [];
  const key = parts.length === 3 && parts[0] === q.epoch ? Number(parts[1]) : -1;
  const token = parts.length === 3 ? Number(parts[2]) : -1;
  return current(q, key, token, receipt);
}

/** The message's tracked state while this lease (key, token) is its current one, else undefined. */
export function currentLease(q: Pick<SettleHost, 'state'>, key: number, token: number): Tracked | undefined {
  const t = q.state.tracked.get(key);
  return t !== undefined && t.state === 'inflight' && t.token === token ? t : undefined;
}

/** The tracked message of delivery (key, token), which must still be the current lease: else RECEIPT_INVALID. */
export function current(q: SettleHost, key: number, token: number, receipt: string): Tracked {
  q.assertOpen();
  const t = currentLease(q, key, token);
  if (t === undefined) {
    throw new WharfError(
      'RECEIPT_INVALID',
      `receipt ${JSON.stringify(receipt)} of queue ${JSON.stringify(q.name)} is not the current delivery (already settled, lease expired, or from before a restart); the message is or will be delivered again: settle that delivery instead`,
    );
  }
  return t;
}

/** Settles the message the receipt points at, lease or not; a no-op when already settled. */
export async function ackByReceiptPosition(q: SettleHost, receipt: string): Promise<void> {
  q.assertOpen();
  const key = Number(String(receipt).split(':')[1]);
  if (!Number.isSafeInteger(key) || key < 0)
    throw new WharfError('RECEIPT_INVALID', `receipt ${JSON.stringify(receipt)} names no message position`);
  const level = trackedLevel(key);
  const offset = trackedOffset(key);
  if (level >= q.state.levels.length) return;
  const l = q.state.level(level);
  if (offset < l.startOffset || offset >= l.endOffset || l.settled.has(offset)) return;
  const t = q.state.tracked.get(key);
  if (t !== undefined) settleTracked(q, t);
  else {
    q.state.settle(level, offset);
    q.roomFreed();
  }
  q.rates.ack.add(1, q.clock.now());
  await q.journal.commit();
  q.maybeSnapshot();
}

/** Not async: every ack of one event-loop turn shares the journal commit's promise. */
export function ackTracked(q: SettleHost, t: Tracked): Promise<void> {
  settleTracked(q, t);
  q.rates.ack.add(1, q.clock.now());
  void q.maybeSnapshot(); // a snapshot started here already holds this settle (memory is ahead of the journal)
  return q.journal.commit();
}

export async function nackTracked(q: SettleHost, t: Tracked, o: NackOptions = {}): Promise<void> {
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
  const now = q.clock.now();
  q.rates.nack.add(1, now);
  if (o.error !== undefined) q.rates.error.add(1, now);
  t.lastError = o.error;
  const reason: DeadLetterReason | null =
    o.requeue === false
      ? 'rejected'
      : q.options.maxDeliveries > 0 && t.deliveryCount >= q.options.maxDeliveries
        ? 'max-deliveries'
        : null;
  if (reason !== null) {
    beginSettling(q, t); // before any await: a second settle of this receipt is RECEIPT_INVALID
    return deadLetterTracked(q, t, reason);
  }
  const delayMs = o.delayMs ?? retryDelayMs(q.options.retry, t.deliveryCount);
  checkDelayMs(delayMs);
  q.leases.release(t);
  q.state.requeue(t, now + delayMs);
  if (delayMs === 0) q.state.makeVisible(t);
  else q.timers.schedule(t.key, now + delayMs);
  q.notify();
  await q.journal.commit();
}

export async function extendTracked(q: SettleHost, t: Tracked, ms: number): Promise<void> {
  if (!(Number.isSafeInteger(ms) && ms >= 0 && ms <= LIMITS.maxVisibilityTimeoutMs)) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `extendVisibility(${ms}): pass an integer from 0 to ${LIMITS.maxVisibilityTimeoutMs} (maxVisibilityTimeoutMs)`,
    );
  }
  // The lease now ends ms from now (SQS ChangeMessageVisibility); leases are not journaled.
  t.dueMs = q.clock.now() + ms;
  q.leases.extend(t, t.dueMs);
}

/** Hands a leased message back without counting the delivery (consumer closing before its handler ran). */
export async function releaseTracked(q: SettleHost, t: Tracked): Promise<void> {
  q.leases.release(t);
  q.state.requeue(t, q.clock.now(), -1);
  q.state.makeVisible(t);
  q.notify();
  await q.journal.commit();
}

export function settleTracked(q: SettleHost, t: Tracked): void {
  q.leases.release(t); // its lease or retry wait, and the timer of either
  q.state.settle(t.level, t.offset);
  q.bytes -= t.bytes;
  q.roomFreed();
  if (q.options.fifo) q.notify(); // the group's next message may go now
}

/** Ends the lease of a message about to be dead-lettered (no expiry, no settle by its receipt meanwhile). */
function beginSettling(q: SettleHost, t: Tracked): void {
  q.leases.release(t);
  q.state.beginSettling(t);
}

/** Whether t is still the tracked message being dead-lettered (a purge may have settled it meanwhile). */
function stillSettling(q: SettleHost, t: Tracked): boolean {
  return q.state.tracked.get(t.key) === t && t.state === 'settling';
}

/**
 * Moves a message in state settling to the dead-letter queue (or drops it when there is none). If
 * the dead letter cannot be written, the message waits its retry backoff (at least
 * deadLetterRetryMs) and is then delivered again, rather than stuck; the error is the caller's.
 * Visible at once, it went straight back to a consumer whose handler failed again: handler, nack,
 * failed dead letter, as fast as the event loop turned.
 */
export async function deadLetterTracked(q: SettleHost, t: Tracked, reason: DeadLetterReason): Promise<void> {
  if (!stillSettling(q, t)) return;
  let writing = false;
  try {
    const rec = await q.readOne(t.level, t.offset);
    if (!stillSettling(q, t)) return;
    if (rec !== null && q.options.deadLetterQueue !== undefined) {
      writing = true;
      await q.host.appendTo(q.options.deadLetterQueue, [deadLetterRecord(rec, q.facts(reason, t))]);
      q.counters.deadLettered++;
    } else {
      q.counters.dropped++;
    }
  } catch (err) {
    const retryMs = Math.max(QUEUE_DEFAULTS.deadLetterRetryMs, retryDelayMs(q.options.retry, t.deliveryCount));
    if (stillSettling(q, t)) {
      const at = q.clock.now() + retryMs;
      q.state.requeue(t, at);
      q.timers.schedule(t.key, at);
    }
    if (!writing) throw err; // reading the message failed: not the dead-letter queue's doing
    q.counters.deadLetterErrors++;
    throw deadLetterUnavailable(
      q,
      reason === 'rejected'
        ? 'a message nacked with requeue: false'
        : `a message at maxDeliveries (delivery ${t.deliveryCount})`,
      err,
      `it is delivered again in ${retryMs} ms (its retry backoff, at least deadLetterRetryMs), and dead-lettered once a later delivery fails and the dead-letter queue takes it`,
    );
  }
  if (stillSettling(q, t)) settleTracked(q, t);
  await q.journal.commit();
}

/** A tracked message's time has come: a retry becomes visible, an expired lease is redelivered or dead-lettered. */
export function dueTracked(q: SettleHost, t: Tracked, now: number): void {
  if (t.dueMs > now) return;
  if (t.state === 'waiting') q.state.makeVisible(t);
  else if (t.state === 'inflight') {
    t.lastError = t.lastError ?? `visibility timeout expired after delivery ${t.deliveryCount}`;
    if (q.options.maxDeliveries > 0 && t.deliveryCount >= q.options.maxDeliveries) {
      beginSettling(q, t); // no longer leased: a late ack must fail
      void q.locked(() => deadLetterTracked(q, t, 'max-deliveries')).catch(() => undefined);
    } else {
      // Whichever timer ended the lease, nothing of it stays: a visible message still in a batch,
      // or with a timer left, could not be leased again (QueueTaker asserts it).
      q.leases.release(t);
      q.state.makeVisible(t);
    }
  }
}

/** Settles an expired message: dropped, or dead-lettered when the queue asks (onExpire). */
export async function expire(q: SettleHost, rec: LogRecord, level: number, t: Tracked | undefined): Promise<void> {
  if (q.options.onExpire === 'dead-letter' && q.options.deadLetterQueue !== undefined) {
    try {
      await q.host.appendTo(q.options.deadLetterQueue, [deadLetterRecord(rec, q.facts('expired', t))]);
    } catch (err) {
      q.counters.deadLetterErrors++;
      throw deadLetterUnavailable(
        q,
        'an expired message',
        err,
        'it stays in the queue, and every receive that reaches it fails until it is moved (consumers retry on their own)',
      );
    }
    q.counters.deadLettered++;
    // Acked by position meanwhile (a transaction rolling forward; that takes no lock): settled
    // already, and settling it again would count its bytes off twice.
    if (t !== undefined ? q.state.tracked.get(t.key) !== t : q.state.level(level).settled.has(rec.offset)) return;
  }
  q.counters.expired++;
  if (t !== undefined) settleTracked(q, t);
  else {
    q.state.settle(level, rec.offset);
    q.bytes -= recordBytes(rec);
    q.roomFreed();
  }
}

/**
 * The error of a dead letter that its dead-letter queue could not take (its storage failed, or it
 * was closed): UNAVAILABLE whatever the cause's code (a CLOSED would read as this queue being
 * closed), naming the dead-letter queue, what became of the message, and what to do.
 */
export function deadLetterUnavailable(q: SettleHost, what: string, err: unknown, outcome: string): WharfError {
  const dlq = q.options.deadLetterQueue!;
  const why = err instanceof Error ? err.message : String(err);
  return new WharfError(
    'UNAVAILABLE',
    `queue ${JSON.stringify(q.name)}: ${what} could not be moved to its dead-letter queue ${JSON.stringify(dlq)} (${why}); ${outcome}. Fix what keeps ${JSON.stringify(dlq)} from storing (a full or failing disk?)`,
    { cause: err, details: { queue: q.name, deadLetterQueue: dlq } },
  );
}

function checkDelayMs(delayMs: number): void {
  if (!(Number.isSafeInteger(delayMs) && delayMs >= 0 && delayMs <= LIMITS.maxDelayMs)) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `nack delayMs ${delayMs} is not an integer from 0 to ${LIMITS.maxDelayMs} (maxDelayMs)`,
    );
  }
}
