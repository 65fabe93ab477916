// A subscription or consumer served on a connection (a flow): its credits, the deliveries waiting
// for one or sent and not settled, and how it ends. The op handlers (handlers/flow.ts) and the
// connection's writes (connection.ts) both work on it.
import { WharfError, type ChurnMap } from '../../common/index.js';
import type { DeliveryMeta, Message, StartPosition } from '../../protocol/index.js';
import { HandlerOutcome, type LogRecord, type StoredQueueDelivery } from '../../broker/index.js';

const settledElsewhere = (): void => undefined;

/** One message on its way to the client, from the broker's handler call until the client settles it. */
export class PendingDelivery extends HandlerOutcome implements DeliveryMeta {
  deliveryId = 0;
  /** Set when the broker's handler awaits the outcome as a promise; otherwise the outcome is reported as a HandlerOutcome. */
  resolve: () => void = settledElsewhere;
  reject: (e: Error) => void = settledElsewhere;
  /** A topic delivery to a group member, on a connection of version 8 or later: its grant's epoch (handlers/flow.ts). */
  assignmentEpoch: number | undefined = undefined;
  /**
   * An ackMode 'auto' queue delivery: the server acks it once it has its credit, before sending it
   * (handlers/flow-credits.ts), so the client's outcome (or the flow's end) only frees its place and settles nothing.
   */
  acksBeforeSend = false;

  constructor(
    /** The decoded message, or null when `record` is sent as stored. */
    readonly message: Message | null,
    /** The stored record (Broker.consumeStored, subscribeStored) until it is written; null otherwise. */
    public record: LogRecord | null,
    readonly deliveryCount: number,
    readonly partition: number | undefined,
    readonly offset: number | undefined,
    readonly receipt: string | undefined,
    readonly firstDeliveredAt: number | undefined,
    /** A stored queue delivery: its receipt's parts are written, and its record let go once written. */
    readonly lease: StoredQueueDelivery | null = null,
  ) {
    super();
  }

  /** The client's handler succeeded (SETTLE ok). */
  settleOk(): void {
    if (this.resolve !== settledElsewhere) this.resolve();
    else if (this.acksBeforeSend) this.acked();
    else this.succeeded();
  }

  /** The client's handler failed, or released the delivery (`err` RELEASED), or the delivery cannot reach it. */
  settleFailed(err: Error): void {
    // An ackMode 'auto' delivery was acked before it was sent: there is nothing to retry.
    if (this.acksBeforeSend) this.settleOk();
    else if (this.reject !== settledElsewhere) this.reject(err);
    else this.failed(err);
  }
}

/**
 * Ends a flow (UNSUBSCRIBE, or its connection closing): new deliveries are refused, the broker's
 * consumer closes, deliveries waiting for a credit end (a queue's held outcome reports unsent, a
 * promise rejects), then the deliveries sent and not settled end. The close starts before any of
 * those is reported: each frees its consumer's slot at once, and a consumer still open would hand
 * its buffered leases to the handler (nacked, or given back one by one) instead of releasing them.
 * A topic fetcher waiting for room (DeliveryGate) is woken by its subscription's close, having
 * committed nothing it waited for. Resolves once the broker's consumer has closed.
 *
 * What never reached the client, and every topic delivery, is released (WharfError RELEASED): the
 * reader is leaving, which is no handler failure, so nothing is counted in errorRate or toward
 * maxDeliveries, and a topic's messages stay uncommitted for the partition's next owner, as an
 * embedded subscription that closes or crashes leaves them. A queue delivery the client had and did
 * not settle fails with `gone` (nacked, counted): it may have been handled in part, or crashed its
 * handler, and maxDeliveries is what stops a message that kills every consumer it reaches. Unless
 * `handlersReported`: the client said it has reported every outcome its handlers had (an
 * UNSUBSCRIBE of version 10 or later, handlers/flow.ts), so what is still unsettled reached no
 * handler (it crossed the UNSUBSCRIBE) and is released too.
 */
export function endFlow(flow: FlowState, gone: WharfError, handlersReported = false): Promise<void> {
  const released = new WharfError('RELEASED', gone.message);
  flow.closedBecause = released;
  const closing = flow.close();
  for (const w of flow.creditWaiters.splice(0)) w.reject(released);
  flow.roomWaiters.clear();
  const unsettled = flow.kind === 'topic' || handlersReported ? released : gone;
  for (const p of flow.pending.values()) p.settleFailed(unsettled);
  flow.pending.clear();
  return closing;
}

/**
 * Adds credits to a flow (the client's grants, or one given back): each goes to the next delivery
 * waiting for one, in order; what is left wakes the topic fetchers waiting for room (DeliveryGate),
 * which take it themselves.
 */
export function grantCredits(flow: FlowState, credits: number): void {
  flow.credits += credits;
  while (flow.credits > 0 && flow.creditWaiters.length > 0) {
    flow.credits--;
    flow.creditWaiters.shift()!.resolve();
  }
  if (flow.credits > 0 && flow.roomWaiters.size > 0) for (const w of [...flow.roomWaiters]) w.wake();
}

/** A subscription or consumer served on a connection. */
export interface FlowState {
  id: number;
  /** A topic subscription or a queue consumer: what becomes of its unsettled deliveries when it ends (endFlow). */
  kind: 'topic' | 'queue';
  credits: number;
  nextDeliveryId: number;
  /** Deliveries sent and not yet settled, by delivery id. */
  pending: ChurnMap<number, PendingDelivery>;
  /** Handlers waiting for a credit. */
  creditWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }>;
  /** ackMode 'auto' topic flows: fetchers waiting for credits before they commit (DeliveryGate). */
  roomWaiters: Set<{ wake(): void }>;
  /**
   * Set when the flow is being closed: why new deliveries are refused (a retried one must not wait
   * for credits forever), a WharfError RELEASED (they never reach the client: no failure).
   */
  closedBecause: WharfError | null;
  /** Deliveries encoded into the next DELIVER frame. */
  batch: PendingDelivery[];
  close(): Promise<void>;
  /** False until SUBSCRIBED is queued: deliveries wait so the client knows the id first. */
  ready: boolean;
  /** The last problem reported before SUBSCRIBED was queued, sent as FLOW_ERROR once it is. */
  heldError?: WharfError;
  /** Topic subscriptions: last assignments sent. */
  lastAssignments?: string;
  assignments?: () => number[];
  seek?: (position: StartPosition) => Promise<void>;
}
