// RECEIVE (long poll) and settlement by receipt. The connection remembers the leased messages it
// handed out (bounded by maxReceiptsPerConnection) so ACK/NACK/EXTEND/RELEASE reach the broker's objects.
import { WharfError } from '../../../common/index.js';
import type { RememberedAnswer } from '../../receive-attempts.js';
import { handBack, handBackOrFail, type Undelivered } from '../../undelivered.js';
import {
  FRAME_PREFIX_BYTES,
  OP,
  decodeExtend,
  decodeNack,
  decodeReceipt,
  decodeReceive,
  encodeDelivery,
  encodeReceivedHeader,
  type NackOptions,
  type QueueMessage,
  type ReceiveOptions,
  type ReceiveRequest,
  type WireWriter,
} from '../../../protocol/index.js';
import type { Connection, OpHandler } from '../connection.js';
import { encodeStoredDelivery, storedSource } from '../stored-delivery.js';

const receive: OpHandler = async (conn, r, id) => {
  const req = decodeReceive(r, conn.protocolVersion);
  const direct = settler(conn);
  const tracked = direct === null;
  const room = tracked ? conn.limits.maxReceiptsPerConnection - conn.receipts.size : req.max;
  if (tracked && room <= 0) {
    throw new WharfError(
      'LIMIT_EXCEEDED',
      `this connection holds ${conn.receipts.size} unsettled receipts (maxReceiptsPerConnection); ack or nack some first`,
    );
  }
  // Attempt ids serve brokers that settle by receipt: a retry comes on a new connection, where
  // receipts only this connection remembered would mean nothing.
  const attemptId = direct === null ? '' : req.attemptId;
  if (attemptId === '') return receiveNew(conn, req, id, '', tracked, room);
  // A retry of an attempt answered before (its answer lost with its connection) gets the same
  // deliveries, byte for byte, where their leases still hold, each lease starting again (the
  // request's visibility timeout, else the queue's), as in SQS. If the connection closed meanwhile,
  // the leases hold again and a further retry is answered the same way.
  let leaseMs: Promise<number> | undefined;
  const extend = async (receipt: string): Promise<void> =>
    direct!.extendVisibilityReceipt(req.queue, receipt, await (leaseMs ??= leaseMsOf(conn, req)));
  // A remembered answer fit in one RECEIVED frame when it was first sent.
  const answerAgain = (again: RememberedAnswer<Buffer>): void =>
    void sendReceived(conn, id, again.items, (w, delivery) => void w.raw(delivery), null);
  await conn.receiveAttempts.serve(req.queue, attemptId, extend, answerAgain, () =>
    receiveNew(conn, req, id, attemptId, tracked, room),
  );
};

/** The lease a RECEIVE asks for: its visibility timeout, else its queue's. */
async function leaseMsOf(conn: Connection, req: ReceiveRequest): Promise<number> {
  return req.visibilityTimeoutMs > 0
    ? req.visibilityTimeoutMs
    : (await conn.broker.describeQueue(req.queue)).options.visibilityTimeoutMs;
}

/** A receive that is not a retry: leases what is ready (or waits for it), and answers; attemptId '' = remember nothing. */
async function receiveNew(
  conn: Connection,
  req: ReceiveRequest,
  id: number,
  attemptId: string,
  tracked: boolean,
  room: number,
): Promise<void> {
  const options: ReceiveOptions = { max: Math.min(req.max, room), waitMs: req.waitMs };
  if (req.visibilityTimeoutMs > 0) options.visibilityTimeoutMs = req.visibilityTimeoutMs;
  const source = tracked ? null : storedSource(conn);
  if (source !== null) {
    // The embedded Broker hands over each message as stored: it goes out without being decoded.
    const stored = await source.receiveStored(req.queue, options);
    await answerReceive(conn, req.queue, id, attemptId, stored, (w, d) =>
      encodeStoredDelivery(
        w,
        d.record,
        { deliveryId: 0, deliveryCount: d.deliveryCount, receipt: d.receipt, firstDeliveredAt: d.firstDeliveredAt },
        d,
      ),
    );
    return;
  }
  const messages = await conn.broker.receive(req.queue, options);
  await answerReceive(
    conn,
    req.queue,
    id,
    attemptId,
    messages,
    (w, m) =>
      encodeDelivery(w, m, {
        deliveryId: 0,
        deliveryCount: m.deliveryCount,
        receipt: m.receipt,
        firstDeliveredAt: m.firstDeliveredAt,
      }),
    (sent) => {
      if (tracked) for (let i = 0; i < sent; i++) conn.receipts.set(messages[i].receipt, messages[i]);
    },
  );
}

/**
 * Answers a RECEIVE with what it leased. A client that left during its long poll cannot get the
 * answer, and messages that did not fit in it (maxResponseFrameBytes) never reached the client:
 * both go back now, uncounted (never delivered), not at the end of their lease. `onSent` learns how
 * many were sent before the rest go back.
 */
async function answerReceive<T extends Undelivered>(
  conn: Connection,
  queue: string,
  id: number,
  attemptId: string,
  leased: readonly T[],
  encodeOne: (w: WireWriter, item: T) => void,
  onSent?: (sent: number) => void,
): Promise<void> {
  if (conn.isClosed) {
    await handBack(conn.broker, queue, leased);
    return;
  }
  const attempt = attemptId === '' ? null : { queue, attemptId, receiptOf: (item: T) => item.receipt };
  const sent = sendReceived(conn, id, leased, encodeOne, attempt);
  onSent?.(sent);
  if (sent < leased.length) await handBack(conn.broker, queue, leased.slice(sent));
}

/**
 * Answers RECEIVED with one delivery per item (encodeOne writes it), as many as fit in
 * maxResponseFrameBytes (at least one): a client refuses a frame over its own limit, and max
 * messages of the largest size would pass it. Returns how many items were sent; the caller hands
 * back the rest. With an attempt, the deliveries as written (a copy) and their receipts are
 * remembered for a retry of it.
 */
function sendReceived<T>(
  conn: Connection,
  id: number,
  items: readonly T[],
  encodeOne: (w: WireWriter, item: T) => void,
  attempt: { queue: string; attemptId: string; receiptOf: (item: T) => string } | null,
): number {
  let sent = items.length;
  conn.send(OP.RECEIVED, id, (w) => {
    const frameStart = w.pos - FRAME_PREFIX_BYTES; // the body is written after the frame's prefix
    const countAt = w.pos;
    encodeReceivedHeader(w, items.length);
    const from = w.pos;
    const starts: number[] = [];
    for (const item of items) {
      const at = w.pos;
      encodeOne(w, item);
      if (starts.length > 0 && w.pos - frameStart > conn.limits.maxResponseFrameBytes) {
        w.pos = at;
        break;
      }
      starts.push(at - from);
    }
    sent = starts.length;
    if (sent < items.length) w.buf.writeUInt16BE(sent, countAt);
    if (attempt !== null) {
      // A copy of each delivery of its own: what a retry leaves out is not held by the rest.
      const deliveries = starts.map((start, i) =>
        Buffer.from(w.buf.subarray(from + start, i + 1 < starts.length ? from + starts[i + 1] : w.pos)),
      );
      conn.receiveAttempts.remember(attempt.queue, attempt.attemptId, {
        items: deliveries,
        receipts: items.slice(0, sent).map(attempt.receiptOf),
      });
    }
  });
  return sent;
}

/** Brokers that settle by receipt directly (the embedded Broker does): receipts then outlive a reconnect. */
interface ReceiptSettler {
  ackReceipt(queue: string, receipt: string): Promise<void>;
  nackReceipt(queue: string, receipt: string, options?: NackOptions): Promise<void>;
  extendVisibilityReceipt(queue: string, receipt: string, ms: number): Promise<void>;
}

export function settler(conn: Connection): ReceiptSettler | null {
  const b = conn.broker as Partial<ReceiptSettler>;
  return typeof b.ackReceipt === 'function' &&
    typeof b.nackReceipt === 'function' &&
    typeof b.extendVisibilityReceipt === 'function'
    ? (b as ReceiptSettler)
    : null;
}

/** The message a receipt this connection handed out names (for a broker that does not settle by receipt). */
export function leased(conn: Connection, queue: string, receipt: string): QueueMessage {
  const m = conn.receipts.get(receipt);
  if (m === undefined || m.queue !== queue) {
    throw new WharfError(
      'RECEIPT_INVALID',
      `receipt ${JSON.stringify(receipt)} of queue ${JSON.stringify(queue)} is not leased on this connection (already settled, expired, or received before a reconnect); receive the message again`,
    );
  }
  return m;
}

const ack: OpHandler = async (conn, r, id) => {
  const req = decodeReceipt(r);
  const direct = settler(conn);
  if (direct !== null) await direct.ackReceipt(req.queue, req.receipt);
  else await leased(conn, req.queue, req.receipt).ack();
  conn.receipts.delete(req.receipt);
  conn.send(OP.OK, id);
};

const nack: OpHandler = async (conn, r, id) => {
  const req = decodeNack(r);
  const direct = settler(conn);
  if (direct !== null) await direct.nackReceipt(req.queue, req.receipt, req.options);
  else await leased(conn, req.queue, req.receipt).nack(req.options);
  conn.receipts.delete(req.receipt);
  conn.send(OP.OK, id);
};

/**
 * RELEASE (version 6): the message goes back visible at once, its delivery not counted, as when a
 * consumer closes before its handler ran (Broker.releaseReceipt; a Wharf that is itself a remote
 * client releases upstream). Behind a Wharf that cannot hand back uncounted it is nacked with no
 * delay, as the server hands back what it could not deliver (undelivered.ts).
 */
const release: OpHandler = async (conn, r, id) => {
  const req = decodeReceipt(r);
  // Receipts of a broker that settles by receipt are good on any connection; others only here.
  const m: Undelivered = settler(conn) !== null ? { receipt: req.receipt } : leased(conn, req.queue, req.receipt);
  await handBackOrFail(conn.broker, req.queue, m);
  conn.receipts.delete(req.receipt);
  conn.send(OP.OK, id);
};

const extend: OpHandler = async (conn, r, id) => {
  const req = decodeExtend(r);
  const direct = settler(conn);
  if (direct !== null) await direct.extendVisibilityReceipt(req.queue, req.receipt, req.ms);
  else await leased(conn, req.queue, req.receipt).extendVisibility(req.ms);
  conn.send(OP.OK, id);
};

export const queueHandlers: Array<[number, OpHandler]> = [
  [OP.RECEIVE, receive],
  [OP.ACK, ack],
  [OP.NACK, nack],
  [OP.EXTEND, extend],
  [OP.RELEASE, release],
];
