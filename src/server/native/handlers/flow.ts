// Topic subscriptions and queue consumers served over the wire. The broker runs its own handler
// logic (ordering, commits, retries, rebalances); our handler forwards each message to the client
// and settles when the client's SETTLE / SETTLE_BATCH arrives, so remote handlers behave like
// embedded ones. Per message: one PendingDelivery and (unless ackMode 'auto') one promise.
// How each delivery spends the client's credits is flow-credits.ts's.
import { ChurnMap, LIMITS, WharfError } from '../../../common/index.js';
import {
  FENCED_COMMIT_VERSION,
  OP,
  RELEASED_SETTLE_VERSION,
  decodeCredit,
  decodeSeek,
  decodeSettle,
  decodeSettleBatch,
  decodeSubscribe,
  decodeSubscriptionId,
  encodeAssignments,
  encodeSubscribed,
  type ConsumeOptions,
  type QueueMessage,
  type SettleOutcome,
  type StartPosition,
  type SubscribeOptions,
  type TopicMessage,
} from '../../../protocol/index.js';
import type { StoredQueueDelivery, StoredTopicDelivery } from '../../../broker/index.js';
import type { Connection, OpHandler } from '../connection.js';
import { PendingDelivery, endFlow, grantCredits, type FlowState } from '../flow-state.js';
import { ackThenForwardTracked, creditGate, forwardWithCredit, sendAdmitted, sendOrHold } from './flow-credits.js';
import { settler } from './queue.js';
import { storedSource } from '../stored-delivery.js';

/** How often a topic subscription's assignments are checked for changes to push. */
const ASSIGNMENT_POLL_MS = 250;

function newFlow(conn: Connection, credits: number, kind: FlowState['kind']): FlowState {
  if (conn.flows.size >= conn.limits.maxSubscriptionsPerConnection) {
    throw new WharfError(
      'LIMIT_EXCEEDED',
      `more than ${conn.limits.maxSubscriptionsPerConnection} subscriptions on one connection (maxSubscriptionsPerConnection); close some`,
    );
  }
  return {
    id: conn.nextFlowId++,
    kind,
    credits,
    nextDeliveryId: 1,
    pending: new ChurnMap(),
    creditWaiters: [],
    roomWaiters: new Set(),
    batch: [],
    closedBecause: null,
    ready: false,
    close: async () => undefined,
  };
}

function pollAssignments(conn: Connection, flow: FlowState): void {
  const tick = (): void => {
    if (conn.isClosed || !conn.flows.has(flow.id) || flow.assignments === undefined) return;
    const now = flow.assignments();
    const key = now.join(',');
    if (key !== flow.lastAssignments) {
      flow.lastAssignments = key;
      conn.send(OP.ASSIGNMENTS, 0, (w) => encodeAssignments(w, flow.id, now));
    }
    setTimeout(tick, ASSIGNMENT_POLL_MS).unref();
  };
  setTimeout(tick, ASSIGNMENT_POLL_MS).unref();
}

const subscribe: OpHandler = async (conn, r, id) => {
  const req = decodeSubscribe(r);
  refuseClientCallback(req.options);
  const flow = newFlow(conn, req.credits, 'topic');
  conn.flows.set(flow.id, flow);
  try {
    // At-most-once ('auto') commits on delivery anyway, so the broker need not wait for the client's
    // handler: deliveries stream, bounded by credits. At-least-once waits for SETTLE before the commit.
    const track = req.options.ackMode !== 'auto';
    const source = storedSource(conn);
    // The embedded Broker commits an auto flow's messages only once they have credits (creditGate).
    // Any other Wharf commits them as it fetches them: held for a credit when the flow ends, they are lost.
    const gate = !track && source !== null ? creditGate(flow) : null;
    // A group member's deliveries carry their grant's epoch from version 8 on (the client knows the
    // member and group from SUBSCRIBED): an older client refuses the mask bit, so it is not sent one.
    const grants = conn.protocolVersion >= FENCED_COMMIT_VERSION;
    const withGrant = (d: PendingDelivery, m: StoredTopicDelivery | TopicMessage): PendingDelivery => {
      if (grants && m.grant !== undefined) d.assignmentEpoch = m.grant.assignmentEpoch;
      return d;
    };
    // What the subscription cannot hand to the handler (a batch it cannot read, CORRUPT_DATA, and
    // retries) goes to the client as FLOW_ERROR, as for a consumer.
    const options: SubscribeOptions = { ...req.options, onError: (err) => conn.flowError(flow, err) };
    // The embedded Broker hands over each message as stored: it goes out without being decoded.
    const sub =
      source !== null
        ? await source.subscribeStored(
            req.name,
            options,
            (m: StoredTopicDelivery) => {
              const d = withGrant(
                new PendingDelivery(null, m.record, m.deliveryCount, m.partition, m.offset, undefined, undefined),
                m,
              );
              if (gate !== null) return sendAdmitted(conn, flow, d);
              return forwardWithCredit(conn, flow, d, track);
            },
            gate,
          )
        : await conn.broker.subscribe(req.name, options, (m: TopicMessage) =>
            forwardWithCredit(
              conn,
              flow,
              withGrant(new PendingDelivery(m, null, m.deliveryCount, m.partition, m.offset, undefined, undefined), m),
              track,
            ),
          );
    if (endedWhileOpening(conn, flow)) {
      await sub.close();
      throw flowEndedBeforeOpen(flow);
    }
    flow.close = () => sub.close();
    flow.assignments = () => sub.assignments();
    flow.seek = (position) => sub.seek(position);
    const assignments = sub.assignments();
    flow.lastAssignments = assignments.join(',');
    conn.send(OP.SUBSCRIBED, id, (w) =>
      encodeSubscribed(w, { subscriptionId: flow.id, memberId: sub.memberId, group: sub.group, assignments }),
    );
    conn.flowReady(flow);
    whenEndedByBroker(conn, flow, sub.ended);
    pollAssignments(conn, flow);
  } catch (err) {
    conn.flows.delete(flow.id);
    throw err;
  }
};

const consume: OpHandler = async (conn, r, id) => {
  const req = decodeSubscribe(r);
  refuseClientCallback(req.options);
  const flow = newFlow(conn, req.credits, 'queue');
  conn.flows.set(flow.id, flow);
  const options = req.options as ConsumeOptions;
  // Brokers that settle by receipt directly (the embedded Broker) need no receipt table here.
  const tracked = settler(conn) === null;
  try {
    // The client's credit window bounds the leases taken for it.
    // A remote handler holds its server-side handler open until SETTLE, so the server runs as many
    // as the client granted credits; the client itself bounds how many of them run at once.
    // Capped at what a consumer may run: a client whose prefetch asks for more credits (embedded
    // accepts prefetch up to maxConsumePrefetch) gets at most that many unsettled deliveries.
    const concurrency = Math.min(LIMITS.maxConsumeConcurrency, Math.max(1, req.credits));
    const source = tracked ? null : storedSource(conn);
    // ackMode 'auto' is the server's: it acks each message once it has a credit for it, right before
    // sending it (ackThenForward), so the broker's consumer runs in manual mode and never acks one
    // still held for a credit. Held when the flow ends, it goes back.
    const auto = options.ackMode === 'auto';
    // What the broker's consumer cannot hand to the handler (a receive that failed) goes to the
    // client as FLOW_ERROR; without it a remote consumer of such a queue just waited, told nothing.
    const consumerOptions: ConsumeOptions = {
      ...options,
      concurrency,
      ackMode: 'manual',
      onError: (err) => conn.flowError(flow, err),
    };
    // Behind any other Wharf, each delivery is sent tracked. Chosen once per flow: ackMode does not
    // change while it runs.
    const sendTracked = auto
      ? (d: PendingDelivery, m: QueueMessage): Promise<void> => ackThenForwardTracked(conn, flow, d, m)
      : (d: PendingDelivery): Promise<void> => forwardWithCredit(conn, flow, d, true)!;
    // The embedded Broker hands over each message as stored: it goes out without being decoded.
    // Each delivery is its own outcome (HandlerOutcome), settled when SETTLE arrives, with no promise
    // per message.
    const consumer =
      source !== null
        ? await source.consumeStored(req.name, consumerOptions, (m: StoredQueueDelivery) => {
            const d = new PendingDelivery(
              null,
              m.record,
              m.deliveryCount,
              undefined,
              undefined,
              m.receipt,
              m.firstDeliveredAt,
              m,
            );
            d.acksBeforeSend = auto;
            sendOrHold(conn, flow, d);
            return d;
          })
        : await conn.broker.consume(req.name, consumerOptions, (m: QueueMessage) => {
            const d = new PendingDelivery(
              m,
              null,
              m.deliveryCount,
              undefined,
              undefined,
              m.receipt,
              m.firstDeliveredAt,
            );
            d.acksBeforeSend = auto;
            if (!tracked) return sendTracked(d, m);
            conn.receipts.set(m.receipt, m);
            const forget = (): void => void conn.receipts.delete(m.receipt);
            try {
              const settled = sendTracked(d, m);
              settled.then(forget, forget);
              return settled;
            } catch (err) {
              forget();
              throw err;
            }
          });
    if (endedWhileOpening(conn, flow)) {
      await consumer.close();
      throw flowEndedBeforeOpen(flow);
    }
    flow.close = () => consumer.close();
    conn.send(OP.SUBSCRIBED, id, (w) =>
      encodeSubscribed(w, { subscriptionId: flow.id, memberId: '', group: null, assignments: [] }),
    );
    conn.flowReady(flow);
    whenEndedByBroker(conn, flow, consumer.ended);
  } catch (err) {
    conn.flows.delete(flow.id);
    throw err;
  }
};

/** onError is the client's own callback (told through FLOW_ERROR): a value sent for it is refused, as embedded. */
function refuseClientCallback(options: Record<string, unknown>): void {
  if (Object.hasOwn(options, 'onError'))
    throw new WharfError(
      'INVALID_ARGUMENT',
      "option onError is the client's own callback, told through FLOW_ERROR (protocol version 11): do not send it",
    );
}

/**
 * True when the flow ended (UNSUBSCRIBE, or its connection closing) while its SUBSCRIBE or CONSUME
 * awaited the broker. endFlow then ran while the flow's close was still a no-op, so the subscription
 * or consumer the broker just opened is closed by the opener; nothing else would ever close it.
 */
function endedWhileOpening(conn: Connection, flow: FlowState): boolean {
  return conn.isClosed || flow.closedBecause !== null || conn.flows.get(flow.id) !== flow;
}

function flowEndedBeforeOpen(flow: FlowState): WharfError {
  return new WharfError(
    'CLOSED',
    `subscription ${flow.id} was unsubscribed (or its connection closed) before it was subscribed; subscribe again`,
  );
}

/**
 * Once the broker ends a flow's subscription or consumer on its own (`ended` settles with an error:
 * its topic or queue was deleted), the flow ends as an UNSUBSCRIBE would end it and the client is
 * told (Connection.flowEnded). Registered after SUBSCRIBED is queued, so FLOW_ENDED follows it.
 * Nothing to do when the flow ended first (UNSUBSCRIBE, the connection closing, the broker closing).
 */
function whenEndedByBroker(conn: Connection, flow: FlowState, ended: Promise<WharfError | null>): void {
  void ended.then((reason) => {
    if (reason === null || conn.flows.get(flow.id) !== flow) return;
    conn.flows.delete(flow.id);
    void endFlow(flow, reason).catch(() => undefined);
    conn.flowEnded(flow, reason);
  });
}

function requireFlow(conn: Connection, subscriptionId: number): FlowState {
  const flow = conn.flows.get(subscriptionId);
  if (flow === undefined)
    throw new WharfError('NOT_FOUND', `no subscription ${subscriptionId} on this connection; subscribe first`);
  return flow;
}

const credit: OpHandler = (conn, r) => {
  const c = decodeCredit(r);
  const flow = conn.flows.get(c.subscriptionId);
  if (flow === undefined) return; // raced with UNSUBSCRIBE: harmless
  grantCredits(flow, c.credits);
};

/** The unsettled delivery with this id, taken out of the flow; undefined when already settled or never sent. */
function takePending(flow: FlowState, deliveryId: number): PendingDelivery | undefined {
  const p = flow.pending.get(deliveryId);
  if (p !== undefined) flow.pending.delete(deliveryId);
  return p;
}

/**
 * Takes out of pending the deliveries that [first, length] runs name. A run may name up to 2^32
 * ids, far more than are pending: walking ids one by one would hold the event loop (every client's)
 * for seconds. So the work is bounded by what is pending, not by what the runs say: ids one by one
 * while the runs are short, else one pass over the pending ids against the runs sorted by start.
 */
export function takeSettledRuns(flow: FlowState, runs: number[]): PendingDelivery[] {
  const settled: PendingDelivery[] = [];
  let named = 0;
  for (let i = 1; i < runs.length; i += 2) named += runs[i];
  if (named <= 2 * flow.pending.size + 64) {
    for (let i = 0; i < runs.length; i += 2) {
      for (let deliveryId = runs[i], end = runs[i] + runs[i + 1]; deliveryId < end; deliveryId++) {
        const p = takePending(flow, deliveryId);
        if (p !== undefined) settled.push(p);
      }
    }
    return settled;
  }
  const starts: Array<[number, number]> = [];
  for (let i = 0; i < runs.length; i += 2) if (runs[i + 1] > 0) starts.push([runs[i], runs[i] + runs[i + 1]]);
  starts.sort((a, b) => a[0] - b[0]);
  // Runs may overlap: the furthest end reached by any run starting at or before each one.
  for (let i = 1; i < starts.length; i++) starts[i][1] = Math.max(starts[i][1], starts[i - 1][1]);
  const hits: number[] = [];
  for (const deliveryId of flow.pending.keys()) {
    let lo = 0;
    let hi = starts.length - 1;
    let at = -1; // the last run starting at or before deliveryId
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid][0] <= deliveryId) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (at >= 0 && deliveryId < starts[at][1]) hits.push(deliveryId);
  }
  hits.sort((a, b) => a - b); // settled in id order, as the walk would
  for (const deliveryId of hits) settled.push(takePending(flow, deliveryId)!);
  return settled;
}

/**
 * A released delivery (version 10) was turned away by a client that is leaving: settled as an
 * embedded handler that threw RELEASED would be (not counted, not committed or acked, given back).
 */
function settleOne(flow: FlowState, deliveryId: number, outcome: SettleOutcome, error: string): void {
  const p = takePending(flow, deliveryId);
  if (p === undefined) return;
  if (outcome === 'handled') p.settleOk();
  else if (outcome === 'released')
    p.settleFailed(new WharfError('RELEASED', error === '' ? 'the remote handler released the delivery' : error));
  else p.settleFailed(new WharfError('INTERNAL', error === '' ? 'the remote handler failed' : error));
}

const settle: OpHandler = (conn, r) => {
  const s = decodeSettle(r, conn.protocolVersion);
  const flow = conn.flows.get(s.subscriptionId);
  if (flow !== undefined) settleOne(flow, s.deliveryId, s.outcome, s.error);
};

const settleBatch: OpHandler = (conn, r) => {
  const s = decodeSettleBatch(r);
  const flow = conn.flows.get(s.subscriptionId);
  if (flow === undefined) return; // raced with UNSUBSCRIBE: harmless
  // Every delivery the runs name is taken out of pending first: granting credits or reporting an
  // outcome can send the next message (one held for a credit, or one a freed slot takes) under a
  // new id, and a run reaching past the ids sent so far must not settle it.
  const settled = takeSettledRuns(flow, s.runs);
  // Credits before the reports: a settled queue delivery frees its consumer's slot at once
  // (HandlerOutcome), and the next message goes out in the same turn only if the client's new
  // credits are already counted.
  if (s.credits > 0) grantCredits(flow, s.credits);
  for (const p of settled) p.settleOk();
};

const seek: OpHandler = async (conn, r, id) => {
  const s = decodeSeek(r);
  const flow = requireFlow(conn, s.subscriptionId);
  if (flow.assignments === undefined)
    throw new WharfError(
      'INVALID_ARGUMENT',
      `subscription ${s.subscriptionId} is a queue consumer; only topic subscriptions seek`,
    );
  await flow.seek!(s.position as StartPosition);
  conn.send(OP.OK, id);
};

/**
 * From version 10 a client sends UNSUBSCRIBE only once it has reported every outcome its handlers
 * had (docs/protocol.md): a queue delivery still unsettled then crossed the UNSUBSCRIBE and reached
 * no handler, so it is released, not nacked and counted. A dropped connection, or an UNSUBSCRIBE of
 * an older version, still nacks (endFlow).
 */
const unsubscribe: OpHandler = async (conn, r, id) => {
  const subscriptionId = decodeSubscriptionId(r);
  const flow = requireFlow(conn, subscriptionId);
  conn.flows.delete(subscriptionId);
  await endFlow(
    flow,
    new WharfError('CLOSED', 'the subscription was closed before this delivery was settled'),
    conn.protocolVersion >= RELEASED_SETTLE_VERSION,
  );
  conn.send(OP.OK, id);
};

export const flowHandlers: Array<[number, OpHandler]> = [
  [OP.SUBSCRIBE, subscribe],
  [OP.CONSUME, consume],
  [OP.CREDIT, credit],
  [OP.SETTLE, settle],
  [OP.SETTLE_BATCH, settleBatch],
  [OP.SEEK, seek],
  [OP.UNSUBSCRIBE, unsubscribe],
];
