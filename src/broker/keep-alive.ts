// Holds the process open while an embedded consumer or subscription is open, as an open server
// socket would: a worker that only consumes must not exit while its queue happens to be empty
// (the broker's own timers are unref'd, so that a script that is done can exit without close()).
import { assert } from '../common/index.js';

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
 * The ways a flow stops: its own close(), and for a topic subscription the stop when its topic is
 * deleted (closeForDelete, called by the topic manager, not through close()).
 */
const STOP_METHODS = ['close', 'closeForDelete'] as const;

/** The flow, whose every way of stopping now also gives back a hold taken for it. */
export function heldWhileOpen<T extends { close(): Promise<void> }>(keepAlive: KeepAlive, flow: T): T {
  const release = keepAlive.hold();
  const stoppable = flow as unknown as Record<string, unknown>;
  for (const name of STOP_METHODS) {
    const stop = stoppable[name];
    if (typeof stop !== 'function') continue;
    const bound = (stop as () => Promise<void>).bind(flow);
    stoppable[name] = () => bound().finally(release);
  }
  return flow;
}
