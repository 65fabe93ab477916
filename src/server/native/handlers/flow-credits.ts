// How a flow's deliveries spend the client's credits: sent at once, awaited, or held until one
// comes. With ackMode 'auto' a message is acked (queues) or committed (topics, through the broker's
// DeliveryGate) only once its credit is spent, right before it is sent: one held for a credit when
// the flow ends was never taken, so it goes back (queues) or to the partition's next owner (topics).
import { WharfError, isWharfError, toWharfError } from '../../../common/index.js';
import type { DeliveryGate, QueueMessage } from '../../../broker/index.js';
import type { Connection } from '../connection.js';
import { grantCredits, type FlowState, type PendingDelivery } from '../flow-state.js';

/** Whether a delivery can still reach the client: its connection is open and its flow not ending. */
function canSend(conn: Connection, flow: FlowState): boolean {
  return !conn.isClosed && flow.closedBecause === null;
}

function waitForCredit(flow: FlowState): Promise<void> {
  if (flow.closedBecause !== null) return Promise.reject(flow.closedBecause);
  return new Promise((resolve, reject) => flow.creditWaiters.push({ resolve, reject }));
}

/**
 * Queues one delivery for the client (a credit already spent). With `track`, returns a promise that
 * settles with the client's outcome (rejects when its handler failed); without (ackMode 'auto'), the
 * outcome is not awaited.
 */
function forward(conn: Connection, flow: FlowState, d: PendingDelivery, track: boolean): Promise<void> | undefined {
  if (flow.closedBecause !== null) throw flow.closedBecause;
  // Never reached the client: released, as endFlow releases what it finds held (no handler failure).
  if (conn.isClosed) throw new WharfError('RELEASED', 'the client connection closed');
  const deliveryId = flow.nextDeliveryId++;
  if (flow.nextDeliveryId > 0xffffffff) flow.nextDeliveryId = 1;
  d.deliveryId = deliveryId;
  flow.pending.set(deliveryId, d);
  conn.deliver(flow, d);
  if (!track) return undefined;
  return new Promise<void>((resolve, reject) => {
    d.resolve = resolve;
    d.reject = reject;
  });
}

/** Spends a credit: undefined when one was left, else the wait for one (rejected if the flow ends first). */
function spendCredit(flow: FlowState): Promise<void> | undefined {
  if (flow.credits === 0) return waitForCredit(flow);
  flow.credits--;
  return undefined;
}

/** Spends a credit (waiting for one if none is left), then forwards. */
export function forwardWithCredit(
  conn: Connection,
  flow: FlowState,
  d: PendingDelivery,
  track: boolean,
): Promise<void> | undefined {
  const waiting = spendCredit(flow);
  return waiting === undefined ? forward(conn, flow, d, track) : waiting.then(() => forward(conn, flow, d, track));
}

/** Sends a queue delivery (a HandlerOutcome) if a credit is left, else holds it until one comes. */
export function sendOrHold(conn: Connection, flow: FlowState, d: PendingDelivery): void {
  if (flow.credits === 0) return holdForCredit(conn, flow, d);
  flow.credits--;
  sendOutcome(conn, flow, d);
}

/**
 * Holds a queue delivery (a HandlerOutcome) until the client grants a credit, then sends it. If the
 * flow ends first, it never reached the client: it goes back to the queue uncounted (unsent), not
 * nacked; with ackMode 'auto' it was not acked either (it is acked only once it has its credit).
 */
function holdForCredit(conn: Connection, flow: FlowState, d: PendingDelivery): void {
  if (flow.closedBecause !== null) return d.unsent();
  flow.creditWaiters.push({ resolve: () => sendOutcome(conn, flow, d), reject: () => d.unsent() });
}

/** Sends a queue delivery (a HandlerOutcome) whose credit is spent; one the connection lost meanwhile goes back unsent. */
function sendOutcome(conn: Connection, flow: FlowState, d: PendingDelivery): void {
  if (d.acksBeforeSend) return ackThenForward(conn, flow, d);
  try {
    forward(conn, flow, d, false);
  } catch {
    d.unsent(); // the connection closed meanwhile
  }
}

/**
 * ackMode 'auto', a queue delivery (a HandlerOutcome) whose credit is spent: acked durably, then
 * sent; the client's outcome then only frees its place. One whose ack fails is not sent, as an
 * embedded auto consumer's handler does not get it: its credit is given back and the failure
 * reported (ackFailed), and the lease, if still held, goes back uncounted. One whose flow ended
 * during the ack is acked and not sent: at-most-once.
 */
function ackThenForward(conn: Connection, flow: FlowState, d: PendingDelivery): void {
  d.lease!.ack().then(
    () => {
      if (canSend(conn, flow)) forward(conn, flow, d, false);
      else d.acked();
    },
    (err: unknown) => {
      ackFailed(conn, flow, err);
      d.unsent();
    },
  );
}

/**
 * The server's ack of an ackMode 'auto' delivery failed, so the client never gets the message: the
 * credit spent on it is given back, and the client is told through FLOW_ERROR, once per message, as
 * an embedded auto consumer's onError is. A journal write that failed (UNAVAILABLE) left the ack in
 * memory only: the message is not delivered again while the broker runs, but a crash before the
 * queue's next snapshot delivers it again. Not reported, as embedded: a lease that had run out
 * (RECEIPT_INVALID, redelivered as usual), or the queue closing (CLOSED).
 */
function ackFailed(conn: Connection, flow: FlowState, err: unknown): void {
  if (!isWharfError(err, 'RECEIPT_INVALID') && !isWharfError(err, 'CLOSED')) conn.flowError(flow, toWharfError(err));
  grantCredits(flow, 1);
}

/**
 * ackMode 'auto' behind a broker that settles by promise: waits for a credit (the flow ending first
 * rejects with RELEASED, and the broker hands back a message it never acked, uncounted), acks,
 * then sends. Resolves once the client settles it, whatever its outcome: it is acked already. A
 * failed ack is reported (ackFailed), its credit given back, and rejects: the message is not sent.
 */
export async function ackThenForwardTracked(
  conn: Connection,
  flow: FlowState,
  d: PendingDelivery,
  m: QueueMessage,
): Promise<void> {
  await spendCredit(flow);
  try {
    await m.ack();
  } catch (err) {
    ackFailed(conn, flow, err);
    throw err;
  }
  if (!canSend(conn, flow)) return; // acked as the flow ended: at-most-once
  await forward(conn, flow, d, true);
}

/**
 * ackMode 'auto' topic flows: the flow's credits as the broker's DeliveryGate. The broker commits
 * and hands over only messages with a credit, each then sent at once (sendAdmitted); one it could
 * not have a credit for stays uncommitted, for the group's next owner when the flow ends.
 */
export function creditGate(flow: FlowState): DeliveryGate {
  return {
    admit: (max) => {
      if (flow.closedBecause !== null) return 0;
      const admitted = Math.min(max, flow.credits);
      flow.credits -= admitted;
      return admitted;
    },
    release: (count) => grantCredits(flow, count),
    addWaiter: (w) => void flow.roomWaiters.add(w),
    removeWaiter: (w) => void flow.roomWaiters.delete(w),
  };
}

/** A topic delivery its flow's gate admitted (credit spent, offset committed): sent unless the flow ended meanwhile (at-most-once). */
export function sendAdmitted(conn: Connection, flow: FlowState, d: PendingDelivery): void {
  if (canSend(conn, flow)) forward(conn, flow, d, false);
}
