// TRANSACTION (version 7): the acks, publishes and offset commits a remote client collected in its
// transaction's callback, committed here through the broker's own transaction, all or nothing.
// Offset commits fenced by a grant (version 8) are fenced by the broker, as embedded.
import { OP, decodeTransaction, type LeasedMessageRef } from '../../../protocol/index.js';
import type { OpHandler } from '../connection.js';
import { payloadsForBroker } from './publish.js';
import { leased, settler } from './queue.js';

const transaction: OpHandler = async (conn, r, id) => {
  const req = decodeTransaction(r, conn.protocolVersion);
  for (const p of req.publishes) payloadsForBroker(conn, p.messages);
  // A broker that settles by receipt (the embedded Broker) takes the client's receipts as they are,
  // from any connection; another Wharf behind the server (a remote client) acks the messages this
  // connection received from it, found by receipt before anything is committed.
  const direct = settler(conn) !== null;
  const acked: LeasedMessageRef[] = req.acks.map((a) => (direct ? a : leased(conn, a.queue, a.receipt)));
  await conn.broker.transaction(async (tx) => {
    for (const m of acked) await tx.ack(m);
    for (const p of req.publishes) await tx.publish(p.name, p.messages);
    for (const o of req.offsets) await tx.commitOffset(o);
  });
  for (const a of req.acks) conn.receipts.delete(a.receipt);
  conn.send(OP.OK, id);
};

export const transactionHandlers: Array<[number, OpHandler]> = [[OP.TRANSACTION, transaction]];
