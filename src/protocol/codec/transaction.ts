// TRANSACTION (version 7): a transaction's acks, publishes and offset commits, collected by the
// client while its callback ran, sent as one request that the server commits all or nothing.
// docs/protocol.md §9a.
import type { LeasedMessageRef, MessageInput, OffsetCommit } from '../api-types.js';
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';
import { decodeMessageInput, encodeMessageInput } from './message.js';

export interface TransactionPublish {
  name: string;
  messages: MessageInput[];
}

export interface TransactionRequest {
  /** Leased messages to ack, named by receipt (the id only names a message in errors). */
  acks: LeasedMessageRef[];
  publishes: TransactionPublish[];
  offsets: OffsetCommit[];
}

/**
 * Counts are u16 each: the broker takes at most MAX_TRANSACTION_OPS (10,000) operations, and
 * encoding refuses a count that does not fit rather than cutting it.
 */
export function encodeTransaction(w: WireWriter, req: TransactionRequest): void {
  w.u16(req.acks.length);
  for (const a of req.acks) w.str(a.queue).str(a.id).str(a.receipt);
  w.u16(req.publishes.length);
  for (const p of req.publishes) {
    w.str(p.name).u16(p.messages.length);
    for (const m of p.messages) encodeMessageInput(w, m);
  }
  w.u16(req.offsets.length);
  for (const o of req.offsets) w.str(o.topic).str(o.group).u32(o.partition).u64(o.offset);
}

/**
 * Arrays grow as items are read, not from the counts: every item takes bytes of the frame, so a
 * count the frame cannot back fails on the first missing byte instead of allocating for it.
 */
export function decodeTransaction(r: WireReader): TransactionRequest {
  const acks: LeasedMessageRef[] = [];
  for (let n = r.u16('ack count'); n > 0; n--) {
    acks.push({ queue: r.str('queue'), id: r.str('id'), receipt: r.str('receipt') });
  }
  const publishes: TransactionPublish[] = [];
  for (let n = r.u16('publish count'); n > 0; n--) {
    const name = r.str('name');
    // 0 messages is allowed, as tx.publish(name, []) is: it stores nothing but needs the target to exist.
    const messages: MessageInput[] = [];
    for (let i = r.u16('count'); i > 0; i--) messages.push(decodeMessageInput(r));
    publishes.push({ name, messages });
  }
  const offsets: OffsetCommit[] = [];
  for (let n = r.u16('offset count'); n > 0; n--) {
    offsets.push({
      topic: r.str('topic'),
      group: r.str('group'),
      partition: r.u32('partition'),
      offset: r.u64('offset'),
    });
  }
  r.done();
  return { acks, publishes, offsets };
}
