// A handler's outcome reported later, without a promise. The native server's consumer flow returns
// one per delivery and settles it when the client's SETTLE arrives; QueueConsumer takes it as it
// takes a returned promise, minus the promise, the resolving functions, the two reactions and their
// closures (about 650 bytes a message, a sixth of the server's allocations on the remote queue bench).
import { assert } from '../../common/index.js';
import type { Delivery } from './delivery.js';

/** Where an outcome goes once known (QueueConsumer). */
export interface OutcomeSink {
  handlerSettled(m: Delivery, err: Error | null): void;
}

/** Not yet reported: distinct from null (success). */
const PENDING = Symbol('pending');

export class HandlerOutcome {
  #sink: OutcomeSink | null = null;
  #delivery: Delivery | null = null;
  /** An outcome reported before attach(): applied by attach. */
  #early: Error | null | typeof PENDING = PENDING;
  #reported = false;
  #attached = false;

  /** The consumer waiting for this outcome (once, right after the handler returned it). */
  attach(sink: OutcomeSink, m: Delivery): void {
    assert(!this.#attached, 'a handler outcome is attached once');
    this.#attached = true;
    if (this.#early !== PENDING) {
      const err = this.#early;
      this.#early = PENDING;
      sink.handlerSettled(m, err);
      return;
    }
    this.#sink = sink;
    this.#delivery = m;
  }

  /** The handler succeeded: the message is acked. Only the first report counts. */
  succeeded(): void {
    this.report(null);
  }

  /** The handler failed: the message is nacked (retried, then dead-lettered). Only the first report counts. */
  failed(err: Error): void {
    this.report(err);
  }

  private report(err: Error | null): void {
    if (this.#reported) return;
    this.#reported = true;
    const sink = this.#sink;
    const m = this.#delivery;
    if (sink === null || m === null) {
      this.#early = err;
      return;
    }
    this.#sink = null;
    this.#delivery = null;
    sink.handlerSettled(m, err);
  }
}
