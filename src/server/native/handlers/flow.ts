// Topic subscriptions and queue consumers served over the wire. The broker runs its own handler
// logic (ordering, commits, retries, rebalances); our handler forwards each message to the client
// and settles when the client's SETTLE arrives, so remote handlers behave like embedded ones.
import { WharfError } from '../../../common/index.js';
import {
  OP,
  decodeCredit,
  decodeSeek,
  decodeSettle,
  decodeSubscribe,
  decodeSubscriptionId,
  encodeAssignments,
  encodeSubscribed,
  type ConsumeOptions,
  type DeliveryMeta,
  type Message,
  type StartPosition,
  type SubscribeOptions,
} from '../../../protocol/index.js';
import type { Connection, FlowState, OpHandler } from '../connection.js';

/** How often a topic subscription's assignments are checked for changes to push. */
const ASSIGNMENT_POLL_MS = 250;

function newFlow(conn: Connection, credits: number): FlowState {
  if (conn.flows.size >= conn.limits.maxSubscriptionsPerConnection) {
    throw new WharfError('LIMIT_EXCEEDED', `more than ${conn.limits.maxSubscriptionsPerConnection} subscriptions on one connection (maxSubscriptionsPerConnection); close some`);
  }
  return {
    id: conn.nextFlowId++,
    credits,
    nextDeliveryId: 1,
    pending: new Map(),
    creditWaiters: [],
    batch: [],
    ready: false,
    close: async () => undefined,
  };
}

function takeCredit(flow: FlowState): Promise<void> | undefined {
  if (flow.credits > 0) {
    flow.credits--;
    return undefined;
  }
  return new Promise((resolve, reject) => flow.creditWaiters.push({ resolve, reject }));
}

/**
 * Sends one message on a flow once a credit is available. Resolves (after sending) with a promise
 * that settles when the client's SETTLE arrives (rejects when its handler failed).
 */
async function send(conn: Connection, flow: FlowState, message: Message, meta: Omit<DeliveryMeta, 'deliveryId'>): Promise<{ settled: Promise<void> }> {
  const wait = takeCredit(flow);
  if (wait !== undefined) await wait;
  if (conn.isClosed) throw new WharfError('CLOSED', 'the client connection closed');
  const deliveryId = flow.nextDeliveryId++;
  if (flow.nextDeliveryId > 0xffffffff) flow.nextDeliveryId = 1;
  const settled = new Promise<void>((resolve, reject) => flow.pending.set(deliveryId, { resolve, reject, receipt: meta.receipt ?? '' }));
  conn.deliver(flow, message, { ...meta, deliveryId });
  return { settled };
}

/** Sends one message and resolves when the client settles it (rejects on failure). */
async function forward(conn: Connection, flow: FlowState, message: Message, meta: Omit<DeliveryMeta, 'deliveryId'>): Promise<void> {
  await (await send(conn, flow, message, meta)).settled;
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
  const flow = newFlow(conn, req.credits);
  conn.flows.set(flow.id, flow);
  try {
    // At-most-once ('auto') commits on delivery anyway, so the broker need not wait for the client's
    // handler: deliveries stream, bounded by credits. At-least-once waits for SETTLE before the commit.
    const autoAck = req.options.ackMode === 'auto';
    const sub = await conn.broker.subscribe(req.name, req.options as SubscribeOptions, async (m) => {
      const { settled } = await send(conn, flow, m, { deliveryCount: m.deliveryCount, partition: m.partition, offset: m.offset });
      if (autoAck) settled.catch(() => undefined);
      else await settled;
    });
    flow.close = () => sub.close();
    flow.assignments = () => sub.assignments();
    flow.seek = (position) => sub.seek(position);
    if (conn.isClosed) {
      await sub.close();
      return;
    }
    const assignments = sub.assignments();
    flow.lastAssignments = assignments.join(',');
    conn.send(OP.SUBSCRIBED, id, (w) => encodeSubscribed(w, { subscriptionId: flow.id, memberId: sub.memberId, group: sub.group, assignments }));
    conn.flowReady(flow);
    pollAssignments(conn, flow);
  } catch (err) {
    conn.flows.delete(flow.id);
    throw err;
  }
};

const consume: OpHandler = async (conn, r, id) => {
  const req = decodeSubscribe(r);
  const flow = newFlow(conn, req.credits);
  conn.flows.set(flow.id, flow);
  const options = req.options as ConsumeOptions;
  try {
    // The client's credit window bounds the leases taken for it.
    // A remote handler holds its server-side handler open until SETTLE, so the server runs as many
    // as the client granted credits; the client itself bounds how many of them run at once.
    const concurrency = Math.max(1, req.credits);
    const consumer = await conn.broker.consume(req.name, { ...options, concurrency }, async (m) => {
      conn.receipts.set(m.receipt, m);
      try {
        await forward(conn, flow, m, { deliveryCount: m.deliveryCount, receipt: m.receipt, firstDeliveredAt: m.firstDeliveredAt });
      } finally {
        conn.receipts.delete(m.receipt);
      }
    });
    flow.close = () => consumer.close();
    if (conn.isClosed) {
      await consumer.close();
      return;
    }
    conn.send(OP.SUBSCRIBED, id, (w) => encodeSubscribed(w, { subscriptionId: flow.id, memberId: '', group: null, assignments: [] }));
    conn.flowReady(flow);
  } catch (err) {
    conn.flows.delete(flow.id);
    throw err;
  }
};

function requireFlow(conn: Connection, subscriptionId: number): FlowState {
  const flow = conn.flows.get(subscriptionId);
  if (flow === undefined) throw new WharfError('NOT_FOUND', `no subscription ${subscriptionId} on this connection; subscribe first`);
  return flow;
}

const credit: OpHandler = (conn, r) => {
  const c = decodeCredit(r);
  const flow = conn.flows.get(c.subscriptionId);
  if (flow === undefined) return; // raced with UNSUBSCRIBE: harmless
  flow.credits += c.credits;
  while (flow.credits > 0 && flow.creditWaiters.length > 0) {
    flow.credits--;
    flow.creditWaiters.shift()!.resolve();
  }
};

const settle: OpHandler = (conn, r) => {
  const s = decodeSettle(r);
  const flow = conn.flows.get(s.subscriptionId);
  const p = flow?.pending.get(s.deliveryId);
  if (flow === undefined || p === undefined) return; // already settled, or the flow is gone
  flow.pending.delete(s.deliveryId);
  if (s.ok) p.resolve();
  else p.reject(new WharfError('INTERNAL', s.error === '' ? 'the remote handler failed' : s.error));
};

const seek: OpHandler = async (conn, r, id) => {
  const s = decodeSeek(r);
  const flow = requireFlow(conn, s.subscriptionId);
  if (flow.assignments === undefined) throw new WharfError('INVALID_ARGUMENT', `subscription ${s.subscriptionId} is a queue consumer; only topic subscriptions seek`);
  await flow.seek!(s.position as StartPosition);
  conn.send(OP.OK, id);
};

const unsubscribe: OpHandler = async (conn, r, id) => {
  const subscriptionId = decodeSubscriptionId(r);
  const flow = requireFlow(conn, subscriptionId);
  conn.flows.delete(subscriptionId);
  const gone = new WharfError('CLOSED', 'the subscription was closed before this delivery was settled');
  for (const w of flow.creditWaiters.splice(0)) w.reject(gone);
  for (const p of flow.pending.values()) p.reject(gone);
  flow.pending.clear();
  await flow.close();
  conn.send(OP.OK, id);
};

export const flowHandlers: Array<[number, OpHandler]> = [
  [OP.SUBSCRIBE, subscribe],
  [OP.CONSUME, consume],
  [OP.CREDIT, credit],
  [OP.SETTLE, settle],
  [OP.SEEK, seek],
  [OP.UNSUBSCRIBE, unsubscribe],
];
