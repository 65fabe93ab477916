// TRANSACTION (version 7): a transaction's acks, publishes and offset commits, collected by the
// client while its callback ran, sent as one request that the server commits all or nothing.
// From version 8 an offset commit may carry the grant it is fenced by. docs/protocol.md §9a.
//
// body   = ackCount:u16 (queue:str id:str receipt:str){ackCount}
//          publishCount:u16 (name:str count:u16 input{count}){publishCount}
//          offsetCount:u16 offset{offsetCount}
// offset = topic:str group:str partition:u32 offset:u64                  (version 7)
//          topic:str group:str partition:u32 offset:u64 flags:u8
//            [memberId:str assignmentEpoch:u32]                          (version 8; flags bit 0: the
//                                                                         grant follows; bits 1-7 are 0)
import { WharfError } from '../../common/index.js';
import type { LeasedMessageRef, MessageInput, OffsetCommit } from '../api-types.js';
import { FENCED_COMMIT_VERSION } from '../ops.js';
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';
import { decodeMessageInput, encodeMessageInput } from './message.js';

const OFFSET_GRANT = 1 << 0;

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

/** True when the request holds a commit fenced by a grant, which only version 8 and later can carry. */
export function hasFencedCommit(req: TransactionRequest): boolean {
  return req.offsets.some((o) => o.grant !== undefined);
}

/**
 * Counts are u16 each: the broker takes at most MAX_TRANSACTION_OPS (10,000) operations, and
 * encoding refuses a count that does not fit rather than cutting it. `version`: the connection's;
 * below version 8 a fenced commit is refused (PROTOCOL_ERROR) rather than sent without its fence.
 */
export function encodeTransaction(w: WireWriter, req: TransactionRequest, version: number): void {
  const grants = version >= FENCED_COMMIT_VERSION;
  if (!grants && hasFencedCommit(req))
    throw new WharfError(
      'PROTOCOL_ERROR',
      `the server speaks protocol version ${version}; an offset commit fenced by a grant needs version ${FENCED_COMMIT_VERSION} or later: upgrade the server`,
    );
  w.u16(req.acks.length);
  for (const a of req.acks) w.str(a.queue).str(a.id).str(a.receipt);
  w.u16(req.publishes.length);
  for (const p of req.publishes) {
    w.str(p.name).u16(p.messages.length);
    for (const m of p.messages) encodeMessageInput(w, m);
  }
  w.u16(req.offsets.length);
  for (const o of req.offsets) {
    w.str(o.topic).str(o.group).u32(o.partition).u64(o.offset);
    if (!grants) continue;
    if (o.grant === undefined) w.u8(0);
    else w.u8(OFFSET_GRANT).str(o.grant.memberId).u32(o.grant.assignmentEpoch);
  }
}

/**
 * Arrays grow as items are read, not from the counts: every item takes bytes of the frame, so a
 * count the frame cannot back fails on the first missing byte instead of allocating for it.
 */
export function decodeTransaction(r: WireReader, version: number): TransactionRequest {
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
    const o: OffsetCommit = {
      topic: r.str('topic'),
      group: r.str('group'),
      partition: r.u32('partition'),
      offset: r.u64('offset'),
    };
    if (version >= FENCED_COMMIT_VERSION) {
      const flags = r.u8('offset flags');
      if ((flags & ~OFFSET_GRANT) !== 0) throw r.fail(`offset flags 0x${flags.toString(16)} set reserved bits`);
      if (flags & OFFSET_GRANT) o.grant = { memberId: r.str('memberId'), assignmentEpoch: r.u32('assignmentEpoch') };
    }
    offsets.push(o);
  }
  r.done();
  return { acks, publishes, offsets };
}
