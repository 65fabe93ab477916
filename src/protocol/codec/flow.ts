// Pushed deliveries under credit-based flow control, for topic subscriptions and queue consumers
// alike. A subscription starts with the credits its SUBSCRIBE/CONSUME names; every delivered
// message spends one; CREDIT grants more. The server never has more deliveries outstanding than
// granted. SETTLE reports a handler's outcome: the broker commits (topics) or acks (queues) on
// success and retries on failure, exactly as for an embedded handler; a released delivery (version
// 10) was turned away by a reader that is leaving: given back, not counted as a failure.
//
// SUBSCRIBE   (0x30)  topic:str options:json credits:u32        -> SUBSCRIBED
// CONSUME     (0x35)  queue:str options:json credits:u32        -> SUBSCRIBED
// SUBSCRIBED  (0xB0)  subscriptionId:u32 memberId:str group:str count:u16 partition:u32{count}
//                     (group '' = none; partitions = current assignments, none for queues)
// CREDIT      (0x31)  subscriptionId:u32 credits:u32            one-way, correlation id 0
// SETTLE      (0x32)  subscriptionId:u32 deliveryId:u32 outcome:u8 error:lstr
//                     outcome 0 = handler succeeded, 1 = handler failed (error says why),
//                     2 = released (version 10: not handled, its reader is leaving); one-way
// SETTLE_BATCH (0x36) subscriptionId:u32 credits:u32 count:u16 (firstDeliveryId:u32 length:u32){count}
//                     one-way: every delivery of each run [first, first + length) succeeded, and
//                     `credits` more are granted (0 = none); a run never passes 0xFFFFFFFF
// SEEK        (0x33)  subscriptionId:u32 position:json          -> OK
// UNSUBSCRIBE (0x34)  subscriptionId:u32                        -> OK
// DELIVER     (0xC0)  subscriptionId:u32 count:u16 delivery{count}   push, correlation id 0
// ASSIGNMENTS (0xC1)  subscriptionId:u32 count:u16 partition:u32{count} push, correlation id 0
// FLOW_ENDED  (0xC2)  subscriptionId:u32 code:str message:lstr retryAfterMs:u32  push, correlation
//                     id 0, version 3: the server ended the flow on its own (its queue or topic was
//                     deleted); the rest is an ERROR body saying why. The flow is gone.
// FLOW_ERROR  (0xC3)  subscriptionId:u32 code:str message:lstr retryAfterMs:u32  push, correlation
//                     id 0, version 11: a problem the server's consumer or subscription of the flow
//                     could not hand to a handler (a receive that failed, say); it keeps retrying, the
//                     flow goes on. The rest is an ERROR body saying what.
import type { WharfError } from '../../common/index.js';
import { RELEASED_SETTLE_VERSION } from '../ops.js';
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';
import { decodeError, encodeError } from './error.js';
import { decodeDelivery, type DecodedDelivery } from './message.js';

export interface SubscribeRequest {
  name: string;
  options: Record<string, unknown>;
  credits: number;
}

export interface Subscribed {
  subscriptionId: number;
  memberId: string;
  group: string | null;
  assignments: number[];
}

/** What became of one delivery: handled (commit / ack), failed (retry, counted), released (given back, uncounted). */
export type SettleOutcome = 'handled' | 'failed' | 'released';

export interface Settle {
  subscriptionId: number;
  deliveryId: number;
  outcome: SettleOutcome;
  /** Why it failed (or was released); '' for none. */
  error: string;
}

const OUTCOME_CODES: Record<SettleOutcome, number> = { handled: 0, failed: 1, released: 2 };
const OUTCOMES: readonly SettleOutcome[] = ['handled', 'failed', 'released'];

export function encodeSubscribe(w: WireWriter, req: SubscribeRequest): void {
  w.str(req.name).json(req.options).u32(req.credits);
}

export function decodeSubscribe(r: WireReader): SubscribeRequest {
  const name = r.str('name');
  const options = r.json('options');
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw r.fail('options is not a JSON object');
  const credits = r.u32('credits');
  r.done();
  return { name, options: options as Record<string, unknown>, credits };
}

function writePartitions(w: WireWriter, partitions: readonly number[]): void {
  w.u16(partitions.length);
  for (const p of partitions) w.u32(p);
}

function readPartitions(r: WireReader): number[] {
  const n = r.u16('partition count');
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = r.u32('partition');
  return out;
}

export function encodeSubscribed(w: WireWriter, s: Subscribed): void {
  w.u32(s.subscriptionId)
    .str(s.memberId)
    .str(s.group ?? '');
  writePartitions(w, s.assignments);
}

export function decodeSubscribed(r: WireReader): Subscribed {
  const subscriptionId = r.u32('subscriptionId');
  const memberId = r.str('memberId');
  const group = r.str('group');
  const assignments = readPartitions(r);
  r.done();
  return { subscriptionId, memberId, group: group === '' ? null : group, assignments };
}

export function encodeCredit(w: WireWriter, subscriptionId: number, credits: number): void {
  w.u32(subscriptionId).u32(credits);
}

export function decodeCredit(r: WireReader): { subscriptionId: number; credits: number } {
  const v = { subscriptionId: r.u32('subscriptionId'), credits: r.u32('credits') };
  r.done();
  return v;
}

/** The caller sends `released` only on a connection of RELEASED_SETTLE_VERSION or later (decodeSettle refuses it before). */
export function encodeSettle(w: WireWriter, s: Settle): void {
  w.u32(s.subscriptionId).u32(s.deliveryId).u8(OUTCOME_CODES[s.outcome]).lstr(s.error);
}

/** `version`: the connection's; outcome 2 (released) is malformed before RELEASED_SETTLE_VERSION. */
export function decodeSettle(r: WireReader, version: number): Settle {
  const subscriptionId = r.u32('subscriptionId');
  const deliveryId = r.u32('deliveryId');
  const code = r.u8('outcome');
  const known = version >= RELEASED_SETTLE_VERSION ? 3 : 2;
  if (code >= known)
    throw r.fail(
      code === 2
        ? `outcome 2 (released) needs protocol version ${RELEASED_SETTLE_VERSION}; this connection speaks ${version}`
        : `outcome ${code} is not one of 0 to ${known - 1}`,
    );
  const error = r.lstr('error');
  r.done();
  return { subscriptionId, deliveryId, outcome: OUTCOMES[code], error };
}

/** Most runs in one SETTLE_BATCH. */
export const MAX_SETTLE_RUNS = 0xffff;
const MAX_DELIVERY_ID = 0xffffffff;

/**
 * SETTLE_BATCH: successes as runs of consecutive delivery ids, plus a credit grant. `runs` is flat:
 * [first, length, first, length, ...], at most MAX_SETTLE_RUNS pairs.
 */
export function encodeSettleBatch(
  w: WireWriter,
  subscriptionId: number,
  credits: number,
  runs: readonly number[],
): void {
  const count = runs.length >>> 1;
  w.u32(subscriptionId).u32(credits).u16(count);
  w.ensure(count * 8);
  for (let i = 0; i < count * 2; i += 2) w.u32(runs[i]).u32(runs[i + 1]);
}

export function decodeSettleBatch(r: WireReader): { subscriptionId: number; credits: number; runs: number[] } {
  const subscriptionId = r.u32('subscriptionId');
  const credits = r.u32('credits');
  const count = r.u16('count');
  r.need(count * 8, 'runs');
  const runs = new Array<number>(count * 2);
  for (let i = 0; i < count * 2; i += 2) {
    const first = r.u32('firstDeliveryId');
    const length = r.u32('length');
    if (first === 0 || length === 0 || first + length - 1 > MAX_DELIVERY_ID)
      throw r.fail(`run of ${length} from delivery id ${first} is empty or passes ${MAX_DELIVERY_ID}`);
    runs[i] = first;
    runs[i + 1] = length;
  }
  r.done();
  return { subscriptionId, credits, runs };
}

export function encodeSeek(w: WireWriter, subscriptionId: number, position: unknown): void {
  w.u32(subscriptionId).json(position);
}

export function decodeSeek(r: WireReader): { subscriptionId: number; position: unknown } {
  const v = { subscriptionId: r.u32('subscriptionId'), position: r.json('position') };
  r.done();
  return v;
}

export function encodeSubscriptionId(w: WireWriter, subscriptionId: number): void {
  w.u32(subscriptionId);
}

export function decodeSubscriptionId(r: WireReader): number {
  const id = r.u32('subscriptionId');
  r.done();
  return id;
}

/** DELIVER body header; the caller appends `count` deliveries with encodeDelivery. */
export function encodeDeliverHeader(w: WireWriter, subscriptionId: number, count: number): void {
  w.u32(subscriptionId).u16(count);
}

/** DELIVER body header: the flow and how many deliveries follow (decode each with decodeDeliveryInto). */
export function decodeDeliverHeader(r: WireReader): { subscriptionId: number; count: number } {
  return { subscriptionId: r.u32('subscriptionId'), count: r.u16('count') };
}

export function decodeDeliver(r: WireReader): { subscriptionId: number; deliveries: DecodedDelivery[] } {
  const subscriptionId = r.u32('subscriptionId');
  const count = r.u16('count');
  const deliveries = new Array<DecodedDelivery>(count);
  for (let i = 0; i < count; i++) deliveries[i] = decodeDelivery(r);
  r.done();
  return { subscriptionId, deliveries };
}

export function encodeAssignments(w: WireWriter, subscriptionId: number, partitions: readonly number[]): void {
  w.u32(subscriptionId);
  writePartitions(w, partitions);
}

export function decodeAssignments(r: WireReader): { subscriptionId: number; partitions: number[] } {
  const subscriptionId = r.u32('subscriptionId');
  const partitions = readPartitions(r);
  r.done();
  return { subscriptionId, partitions };
}

export function encodeFlowEnded(w: WireWriter, subscriptionId: number, reason: WharfError): void {
  w.u32(subscriptionId);
  encodeError(w, reason);
}

export function decodeFlowEnded(r: WireReader): { subscriptionId: number; reason: WharfError } {
  const subscriptionId = r.u32('subscriptionId');
  return { subscriptionId, reason: decodeError(r) };
}

/** FLOW_ERROR's body is FLOW_ENDED's: the flow's id, then an ERROR body. */
export const encodeFlowError = encodeFlowEnded;

export function decodeFlowError(r: WireReader): { subscriptionId: number; error: WharfError } {
  const { subscriptionId, reason } = decodeFlowEnded(r);
  return { subscriptionId, error: reason };
}
