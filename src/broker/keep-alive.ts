// Holds the process open while an embedded consumer or subscription is open, as an open server
// socket would: a worker that only consumes must not exit while its queue happens to be empty
// (the broker's own timers are unref'd, so that a script that is done can exit without close()).
import { assert, type WharfError } from '../common/index.js';

/** One referenced timer for the whole broker, armed while at least one hold is out. */
export class KeepAlive {
  private holds = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  /**
   * Takes a hold; the returned function gives it back (a second call does nothing). After stop()
   * (the broker is closing) nothing is held: a flow that finished opening meanwhile is closed with it.
   */
  hold(): () => void {
    if (this.stopped) return NOOP;
    this.holds++;
    // A timer far in the future that never fires in practice: only its reference matters.
    this.timer ??= setInterval(() => undefined, 1 << 30);
    let released = false;
    return () => {
      if (released || this.stopped) return;
      released = true;
      assert(this.holds > 0, 'a keep-alive hold is given back once');
      if (--this.holds === 0) this.disarm();
    };
  }

  /** Gives back every hold for good (the broker is closing; it closes what holds them). */
  stop(): void {
    this.stopped = true;
    this.holds = 0;
    this.disarm();
  }

  private disarm(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

const NOOP = (): void => undefined;

/**
 * Tells its listeners, once, that a flow has stopped, whichever way it stopped, and says why:
 * `ended` (Consumer.ended, Subscription.ended) settles with the reason fire() was given.
 */
export class StopSignal {
  private listeners: Array<() => void> | null = [];
  private settleEnded!: (reason: WharfError | null) => void;
  /** null: closed; a WharfError: stopped on its own (its queue or topic was deleted). Never rejects. */
  readonly ended = new Promise<WharfError | null>((resolve) => (this.settleEnded = resolve));

  /** Runs fn when the flow stops (at once if it has). */
  on(fn: () => void): void {
    if (this.listeners === null) fn();
    else this.listeners.push(fn);
  }

  fire(reason: WharfError | null = null): void {
    this.settleEnded(reason);
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners !== null) for (const fn of listeners) fn();
  }
}

/** The flow, with a hold taken for it that its stop gives back. */
export function heldWhileOpen<T extends { readonly stopped: StopSignal }>(keepAlive: KeepAlive, flow: T): T {
  flow.stopped.on(keepAlive.hold());
  return flow;
}
