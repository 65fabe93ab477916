// Queue receive (long poll) and settlement by receipt. Against a broker that settles by receipt
// (the embedded Broker) a receipt is valid on any connection until its lease ends; elsewhere only on
// the connection that received it. A RECEIVE sent again with its attempt id (version 4) is answered
// with the same deliveries (docs/protocol.md section 9).
//
// RECEIVE   (0x40)  queue:str max:u32 waitMs:u32 visibilityTimeoutMs:u32   (0 = queue default)
//                   [attemptId:str]  (version 4; empty = none)
// RECEIVED  (0xA1)  count:u16 delivery{count}     (deliveryId 0; receipt set)
// ACK       (0x41)  queue:str receipt:str                              -> OK
// NACK      (0x42)  queue:str receipt:str options:json (NackOptions)   -> OK
// EXTEND    (0x43)  queue:str receipt:str ms:u64                       -> OK
// RELEASE   (0x44)  queue:str receipt:str (as ACK; version 6)          -> OK
import type { NackOptions, ReceiveOptions } from '../api-types.js';
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';
import { RECEIVE_ATTEMPT_VERSION } from '../ops.js';
import { decodeDelivery, type DecodedDelivery } from './message.js';

export interface ReceiveRequest {
  queue: string;
  max: number;
  waitMs: number;
  /** 0 = the queue's own. */
  visibilityTimeoutMs: number;
  /** Names this receive across retries (version 4): a retry is answered with the same messages. '' = none. */
  attemptId: string;
}

/** Longest RECEIVE attempt id, in characters (as SQS's ReceiveRequestAttemptId). */
export const MAX_RECEIVE_ATTEMPT_ID_CHARS = 128;
/** An attempt id's characters: printable ASCII, letters, digits and punctuation, as SQS allows (a regex character class). */
export const RECEIVE_ATTEMPT_ID_CHAR_CLASS = '[!-~]';
const ATTEMPT_ID_CHARS = new RegExp(`^${RECEIVE_ATTEMPT_ID_CHAR_CLASS}*$`); // empty = none

export interface ReceiptRequest {
  queue: string;
  receipt: string;
}

/** `version`: the connection's; the attempt id goes out from RECEIVE_ATTEMPT_VERSION on ('' = none). */
export function encodeReceive(w: WireWriter, queue: string, o: ReceiveOptions, version: number, attemptId = ''): void {
  w.str(queue)
    .u32(o.max ?? 1)
    .u32(o.waitMs ?? 0)
    .u32(o.visibilityTimeoutMs ?? 0);
  if (version >= RECEIVE_ATTEMPT_VERSION) w.str(attemptId);
}

export function decodeReceive(r: WireReader, version: number): ReceiveRequest {
  const v = {
    queue: r.str('queue'),
    max: r.u32('max'),
    waitMs: r.u32('waitMs'),
    visibilityTimeoutMs: r.u32('visibilityTimeoutMs'),
    attemptId: '',
  };
  if (version >= RECEIVE_ATTEMPT_VERSION) {
    v.attemptId = r.str('attemptId');
    if (v.attemptId.length > MAX_RECEIVE_ATTEMPT_ID_CHARS)
      throw r.fail(`attemptId has ${v.attemptId.length} characters, over ${MAX_RECEIVE_ATTEMPT_ID_CHARS}`);
    if (!ATTEMPT_ID_CHARS.test(v.attemptId))
      throw r.fail('attemptId holds a character outside printable ASCII (! to ~), as SQS allows');
  }
  r.done();
  return v;
}

/** RECEIVED header; the caller appends `count` deliveries. */
export function encodeReceivedHeader(w: WireWriter, count: number): void {
  w.u16(count);
}

export function decodeReceived(r: WireReader): DecodedDelivery[] {
  const n = r.u16('count');
  const out = new Array<DecodedDelivery>(n);
  for (let i = 0; i < n; i++) out[i] = decodeDelivery(r);
  r.done();
  return out;
}

export function encodeReceipt(w: WireWriter, req: ReceiptRequest): void {
  w.str(req.queue).str(req.receipt);
}

export function decodeReceipt(r: WireReader): ReceiptRequest {
  const v = { queue: r.str('queue'), receipt: r.str('receipt') };
  r.done();
  return v;
}

export function encodeNack(w: WireWriter, req: ReceiptRequest, options: NackOptions): void {
  w.str(req.queue).str(req.receipt).json(options);
}

export function decodeNack(r: WireReader): ReceiptRequest & { options: NackOptions } {
  const queue = r.str('queue');
  const receipt = r.str('receipt');
  const options = r.json('options');
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw r.fail('options is not a JSON object');
  r.done();
  return { queue, receipt, options: options as NackOptions };
}

export function encodeExtend(w: WireWriter, req: ReceiptRequest, ms: number): void {
  w.str(req.queue).str(req.receipt).u64(ms);
}

export function decodeExtend(r: WireReader): ReceiptRequest & { ms: number } {
  const v = { queue: r.str('queue'), receipt: r.str('receipt'), ms: r.u64('ms') };
  r.done();
  return v;
}
