// Push consumption: a fetch loop keeps up to `prefetch` messages leased ahead, and up to
// `concurrency` handlers run at once. A handler that resolves acks; one that throws nacks
// (retry backoff, then dead-letter after maxDeliveries); one that throws RELEASED hands the
// message back uncounted (its reader is leaving), and the consumer takes nothing for a short
// backoff. The handler gets each delivery decoded into its message fields, or, for a consumer
// started by consumeStored, as its stored record. A fetch that fails is reported (onError) and
// tried again after a backoff; an ack or nack that fails is reported too.
import { LIMITS, WharfError, checkOptionFields, isWharfError, toWharfError } from '../../common/index.js';
import { CONSUME_OPTION_FIELDS, type ConsumeOptions, type Consumer } from '../queue-types.js';
import { backoffMs } from '../context.js';
import type { Delivery } from './delivery.js';
import { HandlerOutcome, type OutcomeSink } from './handler-outcome.js';
import { StopSignal } from '../keep-alive.js';
import type { QueueEngine } from './queue.js';
import { checkConsumeLimits } from './read-limits.js';

const ignore = (): void => undefined;

/** How long one idle fetch waits before looking again (close() interrupts it). */
const IDLE_POLL_MS = 1000;

/**
 * The wait after a failed fetch, doubled for each failure in a row up to the most; close()
 * interrupts it. Not woken by the queue's notify: a failed take gives back what it had leased and
 * notifies, so two consumers whose takes failed woke each other in a loop that never yielded.
 */
export const FETCH_RETRY_MS = 100;
export const FETCH_RETRY_MAX_MS = 5_000;

export class QueueConsumer implements Consumer, OutcomeSink<Delivery> {
  private closed = false;
  /** Leased messages not yet handed to the handler: buffer[bufferHead..] (a head index, not shift(): O(1) per message). */
  private buffer: Delivery[] = [];
  private bufferHead = 0;
  private running = 0;
  /** Resolved when running drops to 0 (close() waits for it); one per close, not one promise per message. */
  private idleWake: (() => void) | null = null;
  private readonly onRunDone = (): void => {
    this.running--;
    if (this.running === 0 && this.idleWake !== null) {
      this.idleWake();
      this.idleWake = null;
    }
    this.slotWake?.();
    this.slotWake = null;
    this.dispatch();
  };
  private slotWake: (() => void) | null = null;
  /** Set while run() attaches to a HandlerOutcome, and whether it reported meanwhile. */
  private attaching = false;
  private reportedWhileAttaching = false;
  /** The last ack's promise (ackQuietly). */
  private lastAck: Promise<void> | null = null;
  private readonly idle: { cancelled: boolean; wake?: () => void } = { cancelled: false };
  /** Releases by the handler since it last handled or failed a message, and until when takes pause for them. */
  private releasesInRow = 0;
  private pausedUntilMs = 0;
  /** Fetches failed in a row (0 once one succeeds), and when the next may be: the wait doubles with each. */
  private fetchFailures = 0;
  private fetchRetryAtMs = 0;
  private loop: Promise<void> = Promise.resolve();
  /** Fired once close() has finished (keep-alive.ts), with why the consumer stopped. */
  readonly stopped = new StopSignal();
  readonly ended = this.stopped.ended;
  private readonly concurrency: number;
  private readonly prefetch: number;
  private readonly leaseMs: number;

  constructor(
    private readonly engine: QueueEngine,
    private readonly options: ConsumeOptions,
    private readonly handler: (message: Delivery) => Promise<void> | HandlerOutcome | void,
    /** false: deliveries keep their stored record instead of being decoded (Broker.consumeStored). */
    private readonly decode = true,
  ) {
    checkOptionFields(options, CONSUME_OPTION_FIELDS, 'consume option', '{ concurrency: 4 }');
    const { concurrency: c, prefetch: p } = checkConsumeLimits(options);
    if (options.ackMode !== undefined && options.ackMode !== 'manual' && options.ackMode !== 'auto') {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `consume ackMode ${JSON.stringify(options.ackMode)}: use 'manual' or 'auto'`,
      );
    }
    if (typeof handler !== 'function') throw new WharfError('INVALID_ARGUMENT', 'consume needs a handler function');
    if (options.onError !== undefined && typeof options.onError !== 'function')
      throw new WharfError('INVALID_ARGUMENT', 'consume onError must be a function (err: WharfError) => void');
    this.concurrency = c;
    this.prefetch = p;
    const leaseMs = options.visibilityTimeoutMs ?? engine.options.visibilityTimeoutMs;
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 1 || leaseMs > LIMITS.maxVisibilityTimeoutMs) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `consume visibilityTimeoutMs ${JSON.stringify(leaseMs)}: pass an integer from 1 to ${LIMITS.maxVisibilityTimeoutMs} (maxVisibilityTimeoutMs)`,
      );
    }
    this.leaseMs = leaseMs;
  }

  get queue(): string {
    return this.engine.name;
  }

  start(): this {
    this.loop = this.pump();
    return this;
  }

  private async pump(): Promise<void> {
    while (!this.closed && !this.engine.closed) {
      const room = this.prefetch - (this.buffer.length - this.bufferHead) - this.running;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.slotWake = resolve));
        continue;
      }
      const pausedUntilMs = Math.max(this.pausedUntilMs, this.fetchRetryAtMs);
      if (pausedUntilMs > this.engine.clock.now()) {
        await this.pause(pausedUntilMs);
        continue;
      }
      let batch: Delivery[];
      try {
        batch = await this.engine.take(room, this.leaseMs, this.decode);
      } catch (err) {
        this.fetchFailed(err);
        continue;
      }
      this.fetchFailures = 0;
      if (batch.length === 0 && !this.closed) {
        // Idle: a publish may hand its messages straight over (queue-handoff.ts).
        batch = await this.engine.waitForWork(IDLE_POLL_MS, this.idle, {
          max: room,
          leaseMs: this.leaseMs,
          decode: this.decode,
        });
        if (batch.length === 0) continue;
      }
      if (this.closed) {
        await Promise.all(batch.map((m) => this.engine.release(m.receipt).catch(() => undefined)));
        return;
      }
      if (this.bufferHead === this.buffer.length) {
        this.buffer = batch;
        this.bufferHead = 0;
      } else {
        for (const m of batch) this.buffer.push(m);
      }
      this.dispatch();
    }
  }

  /**
   * Waits out a pause (after a release, or a failed fetch) until untilMs; close() and a release
   * wake it, and the loop looks again whether a pause still holds.
   */
  private pause(untilMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.engine.clock.setTimer(untilMs - this.engine.clock.now(), () => wake());
      const wake = (): void => {
        timer.cancel();
        if (this.idle.wake === wake) this.idle.wake = undefined;
        resolve();
      };
      this.idle.wake = wake;
    });
  }

  /**
   * A take failed (an expired message its dead-letter queue cannot take, say: every take that
   * reaches it fails): reported, and no take before the backoff has passed, so a broken queue
   * neither spins nor stays silent. What the take had leased it gave back itself.
   */
  private fetchFailed(err: unknown): void {
    if (this.closed) return;
    this.fetchFailures++;
    this.report(err);
    const waitMs = Math.min(FETCH_RETRY_MAX_MS, FETCH_RETRY_MS * 2 ** Math.min(this.fetchFailures - 1, 16));
    this.fetchRetryAtMs = this.engine.clock.now() + waitMs;
  }

  /** Tells onError; the caller's callback must not stop the consumer by throwing. */
  private report(err: unknown): void {
    try {
      this.options.onError?.(toWharfError(err));
    } catch {
      // its own failure: ignored
    }
  }

  private dispatch(): void {
    let finishedHere = false;
    while (!this.closed && this.running < this.concurrency && this.bufferHead < this.buffer.length) {
      const m = this.buffer[this.bufferHead++];
      // A prefetched message whose lease ran out while it waited for a slot is visible again and
      // may be another consumer's by now: handled here too, it would be handled twice.
      if (!m.holdsLease()) continue;
      this.running++;
      // run() never rejects: every settle error is caught inside. A synchronous handler finishes
      // here (a loop, not recursion through onRunDone: no stack growth however many there are).
      if (this.run(m)) {
        this.running--;
        finishedHere = true;
      }
    }
    if (this.bufferHead === this.buffer.length && this.bufferHead > 0) {
      this.buffer = [];
      this.bufferHead = 0;
    }
    if (finishedHere) {
      if (this.running === 0 && this.idleWake !== null) {
        this.idleWake();
        this.idleWake = null;
      }
      this.slotWake?.();
      this.slotWake = null;
    }
  }

  /**
   * Runs the handler, then acks (or nacks what threw); returns true when that all happened now,
   * false when onRunDone will be called once the handler is done. The handler's slot
   * frees once its ack or nack is applied to the queue's state (at once, in memory), not once it is
   * durable: like RabbitMQ's prefetch, which counts unacked messages, not acks on their way to
   * disk. This keeps an fsync out of every slot's cycle. A settle that fails is reported
   * (settleRejected) and changes nothing else: a lease that expired meanwhile (RECEIPT_INVALID) is
   * redelivered as usual.
   */
  private run(m: Delivery): boolean {
    if (this.options.ackMode === 'auto') {
      // At-most-once: the ack is durable before the handler sees the message; what the handler does
      // is not tracked. A message whose ack failed is not handed over: its lease ran out while it
      // waited for a slot (it is someone else's now), or the journal write failed (it comes again
      // after a crash before the queue's next snapshot). Handled anyway, it could be handled twice.
      m.ack().then(() => this.runAutoHandler(m), this.autoAckRejected);
      return false;
    }
    let result: Promise<void> | HandlerOutcome | void;
    try {
      result = this.handler(m);
    } catch (err) {
      this.nackFailed(m, err);
      return true;
    }
    if (result instanceof HandlerOutcome) {
      // Reported later through handlerSettled: no promise per message. One reported already is
      // applied inside attach(): it finishes here, like a synchronous handler (no recursion
      // through onRunDone for a run of them).
      this.attaching = true;
      this.reportedWhileAttaching = false;
      try {
        result.attach(this, m);
      } catch (err) {
        this.nackFailed(m, err); // an outcome attached before (returned twice): a handler bug, like a throw
        return true;
      } finally {
        this.attaching = false;
      }
      return this.reportedWhileAttaching;
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      // One reaction per message (not a chain of two): settle, then free the slot.
      (result as Promise<void>).then(
        () => {
          this.ackQuietly(m);
          this.onRunDone();
        },
        (err: unknown) => {
          this.nackFailed(m, err);
          this.onRunDone();
        },
      );
      return false;
    }
    this.ackQuietly(m);
    return true;
  }

  /** A HandlerOutcome's report: settle as a resolved or rejected handler promise would, then free the slot. */
  handlerSettled(m: Delivery, err: Error | null): void {
    if (err === null) this.ackQuietly(m);
    else this.nackFailed(m, err);
    this.outcomeDone();
  }

  /** A HandlerOutcome reported unsent: back to the queue uncounted, then free the slot. */
  handlerReleased(m: Delivery): void {
    void this.engine.release(m.receipt).catch(ignore);
    this.outcomeDone();
  }

  /** A HandlerOutcome reported acked by the handler itself: nothing to settle, only the slot frees. */
  handlerAcked(): void {
    this.outcomeDone();
  }

  private outcomeDone(): void {
    if (this.attaching)
      this.reportedWhileAttaching = true; // run() returns true: dispatch frees the slot
    else this.onRunDone();
  }

  /**
   * Acks without waiting. The acks of one turn share their journal commit's promise, so its
   * failure handler is attached once, not once per message: a journal write that fails is
   * reported once for the acks it held.
   */
  private ackQuietly(m: Delivery): void {
    this.releasesInRow = 0;
    const p = m.ack();
    if (p !== this.lastAck) {
      this.lastAck = p;
      p.catch(this.settleRejected);
    }
  }

  /**
   * ackMode 'auto': the ack failed, so the handler does not get the message (at most once); said
   * why, unless the lease had run out (it is someone else's now), and its slot frees.
   */
  private readonly autoAckRejected = (err: unknown): void => {
    this.settleRejected(err);
    this.onRunDone();
  };

  /** ackMode 'auto': the message is acked already; the slot frees once the handler is done, whatever its outcome. */
  private runAutoHandler(m: Delivery): void {
    let result: Promise<void> | HandlerOutcome | void;
    try {
      result = this.handler(m);
    } catch {
      this.onRunDone();
      return;
    }
    if (!(result instanceof HandlerOutcome)) {
      void Promise.resolve(result).catch(ignore).then(this.onRunDone);
      return;
    }
    try {
      result.attach(this.autoSink, m);
    } catch {
      this.onRunDone(); // attached before: the message is acked already, only the slot is owed
    }
  }

  /** ackMode 'auto': an outcome only frees the handler's slot (one object per consumer, not per message). */
  private readonly autoSink: OutcomeSink<Delivery> = {
    handlerSettled: () => this.onRunDone(),
    handlerReleased: () => this.onRunDone(),
    handlerAcked: () => this.onRunDone(),
  };

  /**
   * A handler that threw: nacked (counted in errorRate and toward maxDeliveries). One that threw
   * RELEASED turned the message away without handling it (its reader is leaving): it goes back
   * visible at once, uncounted, as a lease a closing consumer had not handed out yet, and this
   * consumer takes nothing for a backoff that doubles with each release in a row. Taking at once,
   * it leased the message straight back: a handler that went on releasing (a worker between
   * deciding to leave and its close(), a remote consumer's client closing) spun through
   * take-release cycles, each a journal commit, and the server's consumer of a closing remote flow
   * held the released messages again, away from every other consumer.
   */
  private nackFailed(m: Delivery, err: unknown): void {
    if (isWharfError(err, 'RELEASED')) {
      if (!this.closed) {
        this.releasesInRow++;
        // The topics' handler backoff (10 ms doubling to 1 s): a release is no failure to wait
        // the queue's retry policy (a nack's) for.
        this.pausedUntilMs = this.engine.clock.now() + backoffMs(this.releasesInRow);
        this.idle.wake?.(); // an idle wait would take the message back as soon as it is visible
      }
      void this.engine.release(m.receipt).catch(ignore);
    } else {
      this.releasesInRow = 0;
      void m.nack({ error: err instanceof Error ? err.message : String(err) }).catch(this.settleRejected);
    }
  }

  /**
   * An ack or nack that failed is reported (a journal write that failed; a message at
   * maxDeliveries whose dead letter could not be written: it comes back later, and fails again),
   * unless its lease had run out (RECEIPT_INVALID: redelivered as usual) or the queue is closing.
   * Nothing else is done: what a failed settle left the message in is the queue's to say.
   */
  private readonly settleRejected = (err: unknown): void => {
    if (isWharfError(err, 'RECEIPT_INVALID') || isWharfError(err, 'CLOSED')) return;
    this.report(err);
  };

  close(): Promise<void> {
    return this.stop(true, null);
  }

  /**
   * Stops at once, for a queue being deleted (`reason`, what `ended` settles with): as close(),
   * but handlers still running are not waited for (a remote consumer's handler waits for its
   * client's SETTLE, which may never come); their acks and nacks find the queue gone.
   */
  abandon(reason: WharfError): Promise<void> {
    return this.stop(false, reason);
  }

  private async stop(waitForHandlers: boolean, reason: WharfError | null): Promise<void> {
    if (this.closed) return this.loop;
    this.closed = true;
    this.idle.wake?.();
    this.slotWake?.();
    await this.loop;
    const unstarted = this.buffer.slice(this.bufferHead);
    this.buffer = [];
    this.bufferHead = 0;
    await Promise.all(unstarted.map((m) => this.engine.release(m.receipt).catch(() => undefined)));
    if (waitForHandlers && this.running > 0) await new Promise<void>((resolve) => (this.idleWake = resolve));
    this.stopped.fire(reason);
  }
}
