// A handler's outcome reported later, without a promise. The native server's consumer flow returns
// one per delivery and settles it when the client's SETTLE arrives; QueueConsumer takes it as it
// takes a returned promise, minus the promise, the resolving functions, the two reactions and their
// closures (about 650 bytes a message, a sixth of the server's allocations on the remote queue bench).
import { assert } from '../../common/index.js';

/**
 * Where an outcome goes once known, with the item it was attached with (QueueConsumer: the
 * delivery). Generic, so this file depends on nothing of the queue's.
 */
export interface OutcomeSink<T> {
  handlerSettled(item: T, err: Error | null): void;
  /** The item never reached the handler (it was held, and its flow ended): nothing is counted. */
  handlerReleased(item: T): void;
  /** The handler acked the item itself before handling it: nothing is left to settle. */
  handlerAcked(item: T): void;
}

/** Not yet reported: distinct from null (success). */
const PENDING = Symbol('pending');
/** Reported as never handled (unsent). */
const RELEASED = Symbol('released');
/** Reported as acked by the handler itself (acked). */
const ACKED = Symbol('acked');

export class HandlerOutcome {
  // Stored without their type parameter: report() hands the sink back the very item attach() got.
  #sink: OutcomeSink<unknown> | null = null;
  #item: unknown = null;
  /** An outcome reported before attach(): applied by attach. */
  #early: Error | null | typeof PENDING | typeof RELEASED | typeof ACKED = PENDING;
  #attached = false;

  /** The consumer waiting for this outcome (once, right after the handler returned it). */
  attach<T>(sink: OutcomeSink<T>, item: T): void {
    assert(!this.#attached, 'a handler outcome is attached once');
    this.#attached = true;
    if (this.#early === RELEASED) sink.handlerReleased(item);
    else if (this.#early === ACKED) sink.handlerAcked(item);
    else if (this.#early !== PENDING) sink.handlerSettled(item, this.#early);
    else {
      this.#sink = sink as OutcomeSink<unknown>;
      this.#item = item;
    }
  }

  /** The handler succeeded: the message is acked. Only the first report counts. */
  succeeded(): void {
    this.report(null);
  }

  /** The handler failed: the message is nacked (retried, then dead-lettered). Only the first report counts. */
  failed(err: Error): void {
    this.report(err);
  }

  /**
   * The message never reached the handler (held for a credit when its flow ended): it goes back
   * to the queue uncounted, as a lease a closing consumer had not handed out yet. Only the first
   * report counts.
   */
  unsent(): void {
    this.report(RELEASED);
  }

  /**
   * The handler acked the message itself before it was handled: the native server's ackMode 'auto'
   * flows ack each message once it has a credit, durably, before sending it. Only its place among the
   * consumer's running handlers is owed, whatever the client's outcome. Only the first report counts.
   */
  acked(): void {
    this.report(ACKED);
  }

  /** Only the first report counts: later ones find the sink gone (attached) or #early set (not yet). */
  private report(outcome: Error | null | typeof RELEASED | typeof ACKED): void {
    const sink = this.#sink;
    if (sink === null) {
      if (!this.#attached && this.#early === PENDING) this.#early = outcome;
      return;
    }
    const item = this.#item;
    this.#sink = null;
    this.#item = null;
    if (outcome === RELEASED) sink.handlerReleased(item);
    else if (outcome === ACKED) sink.handlerAcked(item);
    else sink.handlerSettled(item, outcome);
  }
}
