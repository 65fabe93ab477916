// When a connection PINGs, and when it is taken as lost (docs/protocol.md §3). A PING goes out when
// nothing was sent, or nothing arrived, for a third of the server's idleTimeoutMs. A connection on
// which a PING written idleTimeoutMs ago brought no byte back is lost: a network partition, a NAT
// that dropped its state or a server host that lost power delivers no close, and the kernel would
// take about a quarter of an hour to give up. A PING still waiting for a slot in the server's
// in-flight window (every slot held by a long request) proves nothing and is not counted.
// One per connection: what an earlier connection's PING does later touches only its own.

export type LivenessStep = 'ping' | 'lost' | 'wait';

/** What Liveness asks of its connection. */
export interface LivenessHooks {
  /** Sends a PING; `written` is called when it goes out on the socket. Settles with its answer. */
  ping(written: () => void): Promise<unknown>;
  /** The connection is lost: close it (the connection reconnects as after any close). */
  lost(): void;
}

export class Liveness {
  /** How often tick() runs: a third of the server's idle timeout. */
  readonly tickMs: number;
  #lastSendMs: number;
  #lastReceiveMs: number;
  /** When the PING now unanswered was written; Infinity while it waits to be written; null when none is. */
  #pingWrittenMs: number | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    readonly idleTimeoutMs: number,
    nowMs: number,
  ) {
    this.tickMs = Math.max(10, Math.floor(idleTimeoutMs / 3));
    this.#lastSendMs = this.#lastReceiveMs = nowMs;
  }

  /** Runs tick() every tickMs on the clock of Date.now(), until stop(). */
  start(hooks: LivenessHooks): void {
    this.#timer = setInterval(() => {
      const step = this.tick(Date.now());
      if (step === 'lost') hooks.lost();
      if (step !== 'ping') return;
      this.pingAsked();
      hooks
        .ping(() => this.pingWritten(Date.now()))
        .then(
          () => this.pingSettled(),
          () => this.pingSettled(),
        );
    }, this.tickMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  sent(nowMs: number): void {
    this.#lastSendMs = nowMs;
  }

  received(nowMs: number): void {
    this.#lastReceiveMs = nowMs;
  }

  /** What to do now: send a PING (then pingAsked), close the connection as lost, or nothing. */
  tick(nowMs: number): LivenessStep {
    const pingedMs = this.#pingWrittenMs;
    if (pingedMs !== null) {
      return this.#lastReceiveMs < pingedMs && nowMs - pingedMs >= this.idleTimeoutMs ? 'lost' : 'wait';
    }
    const quiet = nowMs - this.#lastSendMs >= this.tickMs || nowMs - this.#lastReceiveMs >= this.tickMs;
    return quiet ? 'ping' : 'wait';
  }

  /** A PING was asked for: no other until it is answered or failed. */
  pingAsked(): void {
    this.#pingWrittenMs = Number.POSITIVE_INFINITY;
  }

  /** The PING went out on the socket: from now on its answer is awaited. */
  pingWritten(nowMs: number): void {
    this.#pingWrittenMs = nowMs;
  }

  /** The PING was answered, or failed with its connection. */
  pingSettled(): void {
    this.#pingWrittenMs = null;
  }
}
