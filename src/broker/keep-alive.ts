// Holds the process open while an embedded consumer or subscription is open, as an open server
// socket would: a worker that only consumes must not exit while its queue happens to be empty
// (the broker's own timers are unref'd, so that a script that is done can exit without close()).

/** One referenced timer for the whole broker, armed while at least one hold is out. */
export class KeepAlive {
  private holds = 0;
  private timer: NodeJS.Timeout | null = null;

  /** Takes a hold; the returned function gives it back (a second call does nothing). */
  hold(): () => void {
    this.holds++;
    // A timer far in the future that never fires in practice: only its reference matters.
    this.timer ??= setInterval(() => undefined, 1 << 30);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0) this.stop();
    };
  }

  /** Gives back every hold (the broker is closing; it closes what holds them). */
  stop(): void {
    this.holds = 0;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/** The flow, whose close() now also gives back a hold taken for it. */
export function heldWhileOpen<T extends { close(): Promise<void> }>(keepAlive: KeepAlive, flow: T): T {
  const release = keepAlive.hold();
  const close = flow.close.bind(flow);
  flow.close = () => close().finally(release);
  return flow;
}
