// What one partition fetcher makes of its handlers' outcomes under its grant: commits of its
// settled progress (the start position, an auto-ack batch before its delivery, the position in the
// background with at most one commit in flight, the last one at stop) and the retry with backoff of
// a message whose handler threw (or released it), until it succeeds, the fetcher stops, or a
// transaction committed past it. Apart from partition-fetcher.ts, which keeps the fetch loop, the
// reads and the delivery of each message: this runs once per batch, per due progress commit or per
// failure, not per message.
import { isWharfError, toWharfError } from '../../common/index.js';
import type { Clock, WharfError } from '../../common/index.js';
import { backoffMs } from '../context.js';
import type { TopicHandler, TopicMessage } from '../types.js';

/** What the progress needs of its subscription (FetcherHost). */
export interface ProgressHost {
  readonly handler: TopicHandler;
  readonly autoAck: boolean;
  readonly clock: Clock;
  readonly topicRef: { readonly errorMeter: { mark(): void } };
  /** Durable commit under a grant; false when fenced. null: a reader that commits nothing. */
  readonly commit: ((partition: number, assignmentEpoch: number, offset: number) => Promise<boolean>) | null;
  /** The highest offset written under a grant (GroupCoordinator.committedUnderGrant). null: no commits. */
  readonly committedUnderGrant: ((partition: number, assignmentEpoch: number) => number) | null;
  onError(err: WharfError): void;
}

/** What the progress needs of its fetcher (PartitionFetcher). */
export interface ProgressOwner {
  /** Next offset to deliver: every message below it has settled (the lowest unsettled offset). */
  readonly position: number;
  /** Neither stopping nor aborted. */
  readonly running: boolean;
  readonly aborted: boolean;
  /** Stops at once without settling or committing. */
  abort(): void;
  /** The fetch loop's backoff sleep, which stop() and abort() end early. */
  sleep(ms: number): Promise<void>;
}

export class PartitionProgress {
  /** The highest offset committed under the grant by this fetcher (or found committed at its start); -1: none. */
  lastCommitted = -1;
  private commitRequested = -1;
  private commitInFlight: Promise<void> | null = null;
  /** Backoff sleeps of windowed retries (several may run at once); woken by stop/abort. */
  private readonly retrySleepers = new Set<() => void>();

  constructor(
    private readonly owner: ProgressOwner,
    private readonly host: ProgressHost,
    private readonly partition: number,
    /** The grant the fetcher runs for: its commits carry it, so once the grant is over they are refused. */
    private readonly assignmentEpoch: number,
    committedAtStart: number | undefined,
  ) {
    if (committedAtStart !== undefined) this.lastCommitted = committedAtStart;
  }

  /** The commit at stop: once the background one has landed, the position reached, if past the last commit. */
  async commitAtStop(): Promise<void> {
    await this.commitInFlight;
    // Fenced at stop: nothing to abort, the fetcher is ending anyway.
    if (this.host.commit !== null && this.owner.position > this.lastCommitted)
      await this.tryCommit(this.owner.position);
  }

  /** One commit under this fetcher's grant: 'fenced' when the grant is over, 'failed' (reported) on an error. */
  private async tryCommit(offset: number): Promise<'ok' | 'fenced' | 'failed'> {
    try {
      if (!(await this.host.commit!(this.partition, this.assignmentEpoch, offset))) return 'fenced';
      this.lastCommitted = offset;
      return 'ok';
    } catch (err) {
      this.host.onError(toWharfError(err));
      return 'failed';
    }
  }

  /** Wakes the backoff sleeps of windowed retries (the fetcher is stopping or aborted). */
  wakeRetrySleepers(): void {
    if (this.retrySleepers.size > 0) for (const f of [...this.retrySleepers]) f();
  }

  /** retry() for a windowed message: its own wakeable backoff sleep, so several can wait at once. */
  retryWindowed(msg: TopicMessage, err: unknown): Promise<boolean> {
    return this.retry(msg, err, (ms) => this.retrySleep(ms));
  }

  /** A backoff sleep of its own that stop() wakes early (the shared sleep() holds one sleeper only). */
  private retrySleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.host.clock.setTimer(ms, () => done());
      const done = (): void => {
        timer.cancel();
        this.retrySleepers.delete(done);
        resolve();
      };
      this.retrySleepers.add(done);
    });
  }

  /**
   * After a handler threw `err`: count it; in auto mode that settles the message, otherwise deliver
   * it again (deliveryCount+1) after a backoff until it succeeds. False when stopped first (left
   * uncommitted). A message whose offset a transaction has committed under this grant
   * (tx.commitOffset(msg), then a throw) is settled, not delivered again: as in Kafka once the
   * transaction that holds the consumer's offset has committed, it is consumed, and running it
   * again would apply that transaction's effects twice.
   *
   * A handler that throws WharfError RELEASED turned the message away (its reader is leaving, as
   * `wharf consume --count` past its count, or a stream whose client left): not a failure, so it is
   * not counted in errorRate and its deliveryCount stays; stopping, the fetcher leaves it
   * uncommitted for whoever owns the partition next, and while it runs it delivers it again after
   * the backoff (auto mode: it was committed before delivery, so nothing is left to give back).
   */
  async retry(
    msg: TopicMessage,
    err: unknown,
    sleep: (ms: number) => Promise<void> = (ms) => this.owner.sleep(ms),
  ): Promise<boolean> {
    /** Releases of msg in this retry: not deliveries (deliveryCount stays), but each lengthens the backoff. */
    let releases = 0;
    for (;;) {
      const released = isWharfError(err, 'RELEASED');
      if (released) releases++;
      else this.host.topicRef.errorMeter.mark();
      if (this.host.autoAck || this.consumedByTransaction(msg)) return true;
      if (!this.owner.running) return false; // not committed: whoever owns it next delivers it again
      // Every message below this one has settled (it is the lowest unsettled): commit that progress
      // before waiting, else a poison message would keep up to a whole batch uncommitted for as long
      // as it fails (redelivered after a restart, counted as lag). A windowed message that is not
      // the lowest yet commits at a later failure, once the ones below it have settled.
      if (this.owner.position === msg.offset) this.commitSoon();
      await sleep(backoffMs(msg.deliveryCount + releases));
      // That commit lands before the message runs again: its transaction may commit past it.
      await this.commitInFlight;
      // A transaction the handler did not wait for may have committed it meanwhile.
      if (this.consumedByTransaction(msg)) return true;
      if (!this.owner.running) return false;
      if (!released) msg.deliveryCount++;
      try {
        const r = this.host.handler(msg);
        if (r !== undefined && typeof (r as Promise<void>).then === 'function') await r;
        return true;
      } catch (again) {
        err = again; // counted (or not, a release) at the top of the loop
      }
    }
  }

  /**
   * Whether a commit under this fetcher's grant has moved past msg while it is unsettled: the
   * fetcher's own commits stop at the lowest unsettled offset, so only a transaction's can
   * (tx.commitOffset(msg) commits msg.offset + 1; it cannot pass an unsettled message below msg).
   */
  private consumedByTransaction(msg: TopicMessage): boolean {
    const committed = this.host.committedUnderGrant;
    return committed !== null && committed(this.partition, this.assignmentEpoch) > msg.offset;
  }

  /**
   * A commit the fetch loop waits for. Fenced: the fetcher is aborted (the loop is running this,
   * neither waiting nor sleeping, so abort() has nothing to wake).
   */
  async commitNow(offset: number): Promise<'ok' | 'fenced' | 'failed'> {
    const outcome = await this.tryCommit(offset);
    if (outcome === 'fenced') this.owner.abort();
    return outcome;
  }

  /** Commits the position in the background; at most one commit in flight, later positions coalesce. */
  commitSoon(): void {
    if (this.host.commit === null || this.owner.position <= this.commitRequested) return;
    this.commitRequested = this.owner.position;
    if (this.commitInFlight !== null) return;
    this.commitInFlight = (async () => {
      while (this.lastCommitted < this.commitRequested && !this.owner.aborted) {
        const outcome = await this.tryCommit(this.commitRequested);
        if (outcome === 'fenced') {
          this.owner.abort(); // the partition belongs to someone else now
          break;
        }
        if (outcome === 'failed') {
          this.commitRequested = this.lastCommitted;
          break;
        }
      }
      this.commitInFlight = null;
    })();
  }
}
