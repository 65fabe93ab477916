// How a remote flow reports what became of its deliveries: the successes of one turn as runs of
// delivery ids in one SETTLE_BATCH that also grants the spent credits again, a failure or a release
// as its own SETTLE (it carries the error). Against a version 1 server, one SETTLE per delivery and
// one CREDIT per turn; before version 10, a release goes out as a failure (no released outcome).
import { toWharfError } from '../common/index.js';
import {
  MAX_SETTLE_RUNS,
  OP,
  RELEASED_SETTLE_VERSION,
  SETTLE_BATCH_VERSION,
  encodeCredit,
  encodeSettle,
  encodeSettleBatch,
  type SettleOutcome,
} from '../protocol/index.js';
import type { ClientConnection } from './connection.js';

/** What the reports need of their flow (RemoteFlow). */
export interface SettlingFlow {
  /** The flow's id on the connection of `epoch`. */
  readonly serverId: number;
  /** The connection the flow is subscribed on; -1 once the server ended it (nothing is sent). */
  readonly epoch: number;
  /** Closing: a settled delivery grants no credit back. */
  readonly isClosing: boolean;
}

export class FlowSettles {
  /** Successes not yet reported, as [first, length] runs, and credits not yet granted, for settleEpoch. */
  private okRuns: number[] = [];
  private creditsToGrant = 0;
  private settleEpoch = 0;
  private flushQueued = false;
  private readonly flushNow = (): void => this.flush();

  constructor(
    private readonly conn: ClientConnection,
    private readonly flow: SettlingFlow,
  ) {}

  /** Whether the connection takes the released outcome (version 10); before, only a failure. */
  get releases(): boolean {
    return (this.conn.hello?.version ?? 1) >= RELEASED_SETTLE_VERSION;
  }

  /** Reports one outcome (`err`: why it failed or was released) on the connection `epoch` it was delivered on. */
  report(deliveryId: number, epoch: number, outcome: SettleOutcome, err: unknown): void {
    // Deliveries of an earlier connection were failed by the server when it closed: never settle them here.
    if (epoch !== this.conn.epoch || epoch !== this.flow.epoch) return;
    if (this.settleEpoch !== epoch) {
      this.okRuns = [];
      this.creditsToGrant = 0;
      this.settleEpoch = epoch;
    }
    if (outcome !== 'handled') {
      // Successes queued this turn go first: the server must see outcomes in the order they came
      // (a failure seen before earlier successes makes a group rewind past them).
      if (this.okRuns.length > 0) this.flush();
      const serverId = this.flow.serverId;
      const sent = outcome === 'released' && !this.releases ? 'failed' : outcome;
      const error = err === undefined ? '' : toWharfError(err).message;
      this.conn.sendOneWay(
        OP.SETTLE,
        (w) => encodeSettle(w, { subscriptionId: serverId, deliveryId, outcome: sent, error }),
        epoch,
      );
    } else {
      const runs = this.okRuns;
      const n = runs.length;
      if (n > 0 && runs[n - 2] + runs[n - 1] === deliveryId) runs[n - 1]++;
      else runs.push(deliveryId, 1);
      if (runs.length >= MAX_SETTLE_RUNS * 2) this.flush();
    }
    if (!this.flow.isClosing) this.creditsToGrant++;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushNow);
    }
  }

  /** Sends what is gathered: one SETTLE_BATCH with the successes and credits. */
  flush(): void {
    this.flushQueued = false;
    const runs = this.okRuns;
    const credits = this.creditsToGrant;
    if (runs.length === 0 && credits === 0) return;
    this.creditsToGrant = 0;
    const serverId = this.flow.serverId;
    const epoch = this.settleEpoch;
    if ((this.conn.hello?.version ?? 1) >= SETTLE_BATCH_VERSION) {
      this.conn.sendOneWay(OP.SETTLE_BATCH, (w) => encodeSettleBatch(w, serverId, credits, runs), epoch);
    } else {
      for (let i = 0; i < runs.length; i += 2) {
        for (let deliveryId = runs[i], end = runs[i] + runs[i + 1]; deliveryId < end; deliveryId++) {
          this.conn.sendOneWay(
            OP.SETTLE,
            (w) => encodeSettle(w, { subscriptionId: serverId, deliveryId, outcome: 'handled', error: '' }),
            epoch,
          );
        }
      }
      if (credits > 0) this.conn.sendOneWay(OP.CREDIT, (w) => encodeCredit(w, serverId, credits), epoch);
    }
    runs.length = 0;
  }
}
