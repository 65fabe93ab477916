// Op codes of the native protocol, version 11 (version 1 plus SETTLE_BATCH in 2, FLOW_ENDED in 3, a PUBLISH_OK result flag and RECEIVE's attempt id in 4, a second PUBLISH_OK result flag in 5, RELEASE in 6, TRANSACTION in 7, grants on group deliveries, fenced TRANSACTION offset commits and PUBLISH_OK overflow flags in 8, SUBSCRIBE's startOffsets option in 9, SETTLE's outcome 2 (released) in 10, FLOW_ERROR in 11). Requests are 0x01-0x7E, responses set bit 7 of the
// request's family, pushes (server -> client, correlation id 0) are 0xC0 and up. docs/protocol.md
// lists every op's body byte by byte.

export const PROTOCOL_VERSION = 11;
/** First version with SETTLE_BATCH; against an older server the client settles with SETTLE + CREDIT. */
export const SETTLE_BATCH_VERSION = 2;
/** First version with the FLOW_ENDED push; an older client is not sent it (its flow just stops). */
export const FLOW_ENDED_VERSION = 3;
/** First version whose PUBLISH_OK results may set flags bit 1 (a repeated sequence); an older client is not sent it. */
export const REPEATED_SEQUENCE_VERSION = 4;
/** First version whose RECEIVE carries an attempt id (a retry answered with the same messages). */
export const RECEIVE_ATTEMPT_VERSION = 4;
/** First version whose PUBLISH_OK results may set flags bit 2 (the target routes: `routed` holds, 0 included). */
export const ROUTED_FLAG_VERSION = 5;
/** First version with RELEASE (a leased message handed back uncounted); against an older server the client nacks instead. */
export const RELEASE_VERSION = 6;
/** First version with TRANSACTION (acks, publishes and offset commits applied all or nothing); an older server cannot run one. */
export const TRANSACTION_VERSION = 7;
/**
 * First version whose topic deliveries to a group member carry their grant's assignment epoch
 * (delivery mask bit 7), and whose TRANSACTION offset commits may carry a grant (fenced); an older
 * peer is sent neither, and a client does not send a fenced commit to an older server.
 */
export const FENCED_COMMIT_VERSION = 8;
/** First version whose PUBLISH_OK results may set flags bits 3 and 4 (a queue's overflow policy dead-lettered or dropped the message). */
export const OVERFLOW_RESULT_VERSION = 8;
/**
 * First version whose SUBSCRIBE options may carry startOffsets (a reader's start offset per
 * partition); an older server refuses the field, so the client resumes a reader by `from` there.
 */
export const START_OFFSETS_VERSION = 9;
/**
 * First version whose SETTLE may carry outcome 2, released: the client turned the delivery away
 * (its reader is leaving), not counted as a failure. An older server refuses the outcome, so
 * the client settles such a delivery as failed there.
 */
export const RELEASED_SETTLE_VERSION = 10;
/**
 * First version with the FLOW_ERROR push (a problem the server's consumer or subscription of a flow
 * could not hand to its handler; the flow goes on); an older client is not sent it.
 */
export const FLOW_ERROR_VERSION = 11;
/** Oldest version this code still speaks. */
export const MIN_PROTOCOL_VERSION = 1;

export const OP = {
  // handshake and liveness
  HELLO: 0x01,
  PING: 0x02,
  // admin (name + JSON)
  CREATE_TOPIC: 0x10,
  DELETE_TOPIC: 0x11,
  LIST_TOPICS: 0x12,
  DESCRIBE_TOPIC: 0x13,
  CREATE_QUEUE: 0x14,
  DELETE_QUEUE: 0x15,
  PURGE_QUEUE: 0x16,
  LIST_QUEUES: 0x17,
  DESCRIBE_QUEUE: 0x18,
  STATS: 0x19,
  REDRIVE: 0x1a,
  // publish
  PUBLISH: 0x20,
  // flow (topic subscriptions and queue consumers)
  SUBSCRIBE: 0x30,
  CREDIT: 0x31,
  SETTLE: 0x32,
  SEEK: 0x33,
  UNSUBSCRIBE: 0x34,
  CONSUME: 0x35,
  SETTLE_BATCH: 0x36,
  // queue receive and settlement by receipt
  RECEIVE: 0x40,
  ACK: 0x41,
  NACK: 0x42,
  EXTEND: 0x43,
  RELEASE: 0x44,
  // transactions
  TRANSACTION: 0x50,
  // exchanges (name + JSON, like admin)
  CREATE_EXCHANGE: 0x60,
  DELETE_EXCHANGE: 0x61,
  LIST_EXCHANGES: 0x62,
  DESCRIBE_EXCHANGE: 0x63,
  BIND: 0x64,
  UNBIND: 0x65,
  LIST_BINDINGS: 0x66,
  // responses
  OK: 0x80,
  HELLO_OK: 0x81,
  PONG: 0x82,
  JSON_RESULT: 0x90,
  PUBLISH_OK: 0xa0,
  RECEIVED: 0xa1,
  SUBSCRIBED: 0xb0,
  ERROR: 0xff,
  // pushes
  DELIVER: 0xc0,
  ASSIGNMENTS: 0xc1,
  FLOW_ENDED: 0xc2,
  FLOW_ERROR: 0xc3,
} as const;

export type OpName = keyof typeof OP;
export type OpCode = (typeof OP)[OpName];

const NAMES = new Map<number, OpName>(Object.entries(OP).map(([k, v]) => [v, k as OpName]));

export function opName(op: number): string {
  return NAMES.get(op) ?? `0x${op.toString(16).padStart(2, '0')}`;
}

/** Ops that expect no response (fire-and-forget flow control). */
export const ONE_WAY_OPS: ReadonlySet<number> = new Set([OP.CREDIT, OP.SETTLE, OP.SETTLE_BATCH]);

/** Ops added after version 1, with the version that added them: a connection that negotiated less does not have them. */
export const OP_SINCE_VERSION: ReadonlyMap<number, number> = new Map([
  [OP.SETTLE_BATCH, SETTLE_BATCH_VERSION],
  [OP.RELEASE, RELEASE_VERSION],
  [OP.TRANSACTION, TRANSACTION_VERSION],
]);
