// Messages on the wire: the input record a producer publishes and the delivery record a consumer
// receives. Optional fields are flagged in a u16 mask so an absent field costs one bit; payloads
// travel as bytes (kind 0 = UTF-8 JSON text, kind 1 = opaque bytes), so a byte payload is never
// converted and a JSON payload is serialised once by the side that has the value.
//
// input    = length:u32 mask:u16 [id:str] [type:str] [key:str] [headers] [payload]
//            [priority:u32] [delayMs:u64] [groupId:str] [dedupId:str] [routingKey:str]
//            [ttlMs:u64] [producerId:str] [sequence:u64] [partition:u32]
//            (mask bits 0..13 in that order; bits 14, 15 must be 0; key absent = null,
//             payload absent = JSON null)
// headers  = count:u16 (name:str value:lstr){count}
// payload  = kind:u8 data:bytes
//
// delivery = length:u32 deliveryId:u32 mask:u16 id:str type:str timestampMs:u64 deliveryCount:u32
//            headers payload [key:str] [priority:u32] [groupId:str] [dedupId:str] [routingKey:str]
//            [partition:u32 offset:u64] [receipt:str firstDeliveredAtMs:u64] [assignmentEpoch:u32]
//            (mask bits 0..7 in that order; bit 7 from version 8 only, on topic deliveries to a
//             group member: the epoch of the grant it was delivered under)
import { JsonText, WharfError } from '../../common/index.js';
import type { JsonValue, Message, MessageInput, Payload } from '../api-types.js';
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';

export const PAYLOAD_JSON = 0;
export const PAYLOAD_BYTES = 1;

const IN_ID = 1 << 0;
const IN_TYPE = 1 << 1;
const IN_KEY = 1 << 2;
const IN_HEADERS = 1 << 3;
const IN_PAYLOAD = 1 << 4;
const IN_PRIORITY = 1 << 5;
const IN_DELAY = 1 << 6;
const IN_GROUP = 1 << 7;
const IN_DEDUP = 1 << 8;
const IN_ROUTING = 1 << 9;
const IN_TTL = 1 << 10;
const IN_PRODUCER = 1 << 11;
const IN_SEQUENCE = 1 << 12;
const IN_PARTITION = 1 << 13;
const IN_KNOWN = (1 << 14) - 1;

/** Delivery mask bits (also written by a server encoding a delivery from its stored record). */
export const OUT_KEY = 1 << 0;
export const OUT_PRIORITY = 1 << 1;
export const OUT_GROUP = 1 << 2;
export const OUT_DEDUP = 1 << 3;
export const OUT_ROUTING = 1 << 4;
export const OUT_POSITION = 1 << 5;
export const OUT_LEASE = 1 << 6;
/** Version 8 (FENCED_COMMIT_VERSION): never set on a connection of an older version, whose peer refuses it. */
export const OUT_GRANT = 1 << 7;
const OUT_KNOWN = (1 << 8) - 1;

function bad(what: string): WharfError {
  return new WharfError('INVALID_ARGUMENT', `${what}; see MessageInput in the API docs`);
}

function writeHeaders(w: WireWriter, headers: Record<string, string>): void {
  const at = w.pos;
  w.u16(0);
  let n = 0;
  for (const k in headers) {
    const v = headers[k];
    if (typeof v !== 'string') throw bad(`header ${JSON.stringify(k)} is ${typeof v}, not a string`);
    w.str(k).lstr(v);
    n++;
  }
  if (n > 0xffff) throw bad(`${n} headers is more than 65535`);
  w.buf.writeUInt16BE(n, at);
}

function readHeaders(r: WireReader): Record<string, string> {
  const n = r.u16('header count');
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const k = r.str('header name');
    out[k] = r.lstr('header value');
  }
  return out;
}

function writePayload(w: WireWriter, payload: Payload | undefined): void {
  if (payload instanceof JsonText) {
    w.u8(PAYLOAD_JSON).bytes(payload); // checked JSON text, as it came (bytes and lstr share a layout)
    return;
  }
  if (payload instanceof Uint8Array) {
    w.u8(PAYLOAD_BYTES).bytes(payload);
    return;
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(payload === undefined ? null : payload);
  } catch (err) {
    // A cycle, a BigInt, a toJSON that throws: the caller's message, refused as the embedded broker does.
    throw bad(`payload cannot be serialised as JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (text === undefined) throw bad('payload is not JSON-serialisable');
  w.u8(PAYLOAD_JSON).lstr(text);
}

function readPayload(r: WireReader, copyBytes: boolean): Payload {
  const kind = r.u8('payload kind');
  if (kind === PAYLOAD_BYTES) {
    const b = copyBytes ? r.bytesCopy('payload') : r.bytes('payload');
    return b === null ? new Uint8Array(0) : b;
  }
  if (kind !== PAYLOAD_JSON) throw r.fail(`payload kind ${kind} is neither 0 (JSON) nor 1 (bytes)`);
  const text = r.lstr('payload');
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw r.fail('payload of kind 0 is not valid JSON');
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Text that may hold an exponent or a minus zero (a cheap filter before holdsUnsafeNumber). */
const MAYBE_UNSAFE_NUMBER = /\d[eE]|-0/;

/** True when a parsed value holds a number JSON.stringify would not write back as itself. */
function holdsUnsafeNumber(value: JsonValue): boolean {
  const stack: JsonValue[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (!Number.isFinite(v) || Object.is(v, -0)) return true;
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push(item);
    } else if (v !== null && typeof v === 'object') {
      for (const k in v) stack.push(v[k]);
    }
  }
  return false;
}

/**
 * A published payload. JSON arrives as text: when it is valid UTF-8 and valid JSON it is kept as
 * that text (JsonText, a view into the frame) and stored as it came; otherwise it is read as
 * readPayload does (invalid UTF-8 becomes U+FFFD; invalid JSON is refused). A receiver that is
 * not the embedded Broker gets values instead (jsonTextAsValues).
 */
function readInputPayload(r: WireReader): Payload {
  const at = r.pos;
  const kind = r.u8('payload kind');
  if (kind !== PAYLOAD_JSON) {
    r.pos = at;
    return readPayload(r, false);
  }
  const bytes = r.bytes('payload');
  if (bytes !== null) {
    let text: string | null = null;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      text = null; // not UTF-8: read below, with replacement characters
    }
    if (text !== null) {
      let value: JsonValue;
      try {
        value = JSON.parse(text) as JsonValue;
      } catch {
        throw r.fail('payload of kind 0 is not valid JSON');
      }
      // A number JSON cannot carry back (1e400 reads as Infinity, -0 as minus zero) is stored as
      // the value serialised (null, 0), as before: every reader then sees the same JSON.
      if (MAYBE_UNSAFE_NUMBER.test(text) && holdsUnsafeNumber(value)) return value;
      return JsonText.over(bytes);
    }
  }
  r.pos = at;
  return readPayload(r, false);
}

/**
 * Replaces each JsonText payload by its value: for a receiver of decoded messages that is not the
 * embedded Broker (any other Wharf takes JSON payloads as values; a JsonText is a Uint8Array).
 */
export function jsonTextAsValues(messages: MessageInput[]): void {
  for (const m of messages) {
    if (m.payload instanceof JsonText) m.payload = JSON.parse(strictUtf8.decode(m.payload)) as JsonValue;
  }
}

function optInt(v: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max)
    throw bad(`${field} is ${JSON.stringify(v)}, not an integer from 0 to ${max}`);
  return v;
}

/** The largest value of a u32 field (priority, partition): a larger one would wrap on the wire. */
const U32_MAX = 0xffffffff;

function optStr(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(`${field} is ${typeof v}, not a string`);
  return v;
}

/**
 * Encodes one input record. An idempotent producer passes its producerId and this record's
 * sequence here instead of copying the message object to add them.
 */
export function encodeMessageInput(
  w: WireWriter,
  m: MessageInput,
  stampProducerId?: string,
  stampSequence?: number,
): void {
  if (m === null || typeof m !== 'object' || Array.isArray(m))
    throw bad(`message is ${m === null ? 'null' : typeof m}, not an object`);
  const id = optStr(m.id, 'id');
  const type = optStr(m.type, 'type');
  const key = m.key === null ? undefined : optStr(m.key, 'key');
  const priority = optInt(m.priority, 'priority', U32_MAX);
  const delayMs = optInt(m.delayMs, 'delayMs');
  const groupId = optStr(m.groupId, 'groupId');
  const dedupId = optStr(m.dedupId, 'dedupId');
  const routingKey = optStr(m.routingKey, 'routingKey');
  const ttlMs = optInt(m.ttlMs, 'ttlMs');
  // The producer's stamp applies only to messages that carry neither field themselves.
  const stamp = m.producerId === undefined && m.sequence === undefined;
  const producerId = stamp ? stampProducerId : optStr(m.producerId, 'producerId');
  const sequence = stamp ? stampSequence : optInt(m.sequence, 'sequence');
  const partition = optInt(m.partition, 'partition', U32_MAX);
  if (m.headers !== undefined && (m.headers === null || typeof m.headers !== 'object'))
    throw bad('headers is not an object');
  let mask = 0;
  if (id !== undefined) mask |= IN_ID;
  if (type !== undefined) mask |= IN_TYPE;
  if (key !== undefined) mask |= IN_KEY;
  if (m.headers !== undefined) mask |= IN_HEADERS;
  if (m.payload !== undefined) mask |= IN_PAYLOAD;
  if (priority !== undefined) mask |= IN_PRIORITY;
  if (delayMs !== undefined) mask |= IN_DELAY;
  if (groupId !== undefined) mask |= IN_GROUP;
  if (dedupId !== undefined) mask |= IN_DEDUP;
  if (routingKey !== undefined) mask |= IN_ROUTING;
  if (ttlMs !== undefined) mask |= IN_TTL;
  if (producerId !== undefined) mask |= IN_PRODUCER;
  if (sequence !== undefined) mask |= IN_SEQUENCE;
  if (partition !== undefined) mask |= IN_PARTITION;
  const at = w.reserveU32();
  w.u16(mask);
  if (id !== undefined) w.str(id);
  if (type !== undefined) w.str(type);
  if (key !== undefined) w.str(key);
  if (m.headers !== undefined) writeHeaders(w, m.headers);
  if (m.payload !== undefined) writePayload(w, m.payload);
  if (priority !== undefined) w.u32(priority);
  if (delayMs !== undefined) w.u64(delayMs);
  if (groupId !== undefined) w.str(groupId);
  if (dedupId !== undefined) w.str(dedupId);
  if (routingKey !== undefined) w.str(routingKey);
  if (ttlMs !== undefined) w.u64(ttlMs);
  if (producerId !== undefined) w.str(producerId);
  if (sequence !== undefined) w.u64(sequence);
  if (partition !== undefined) w.u32(partition);
  w.patchU32(at, w.pos - at - 4);
}

/** Decodes one input record. Byte payloads are views into the frame: the broker copies what it stores. */
export function decodeMessageInput(r: WireReader): MessageInput {
  const length = r.u32('record length');
  r.need(length, 'record');
  const end = r.pos + length;
  const mask = r.u16('record mask');
  if ((mask & ~IN_KNOWN) !== 0) throw r.fail(`record mask 0x${mask.toString(16)} sets reserved bits`);
  const m: MessageInput = {};
  if (mask & IN_ID) m.id = r.str('id');
  if (mask & IN_TYPE) m.type = r.str('type');
  m.key = mask & IN_KEY ? r.str('key') : null;
  if (mask & IN_HEADERS) m.headers = readHeaders(r);
  if (mask & IN_PAYLOAD) m.payload = readInputPayload(r);
  if (mask & IN_PRIORITY) m.priority = r.u32('priority');
  if (mask & IN_DELAY) m.delayMs = r.u64('delayMs');
  if (mask & IN_GROUP) m.groupId = r.str('groupId');
  if (mask & IN_DEDUP) m.dedupId = r.str('dedupId');
  if (mask & IN_ROUTING) m.routingKey = r.str('routingKey');
  if (mask & IN_TTL) m.ttlMs = r.u64('ttlMs');
  if (mask & IN_PRODUCER) m.producerId = r.repeatedStr('producerId');
  if (mask & IN_SEQUENCE) m.sequence = r.u64('sequence');
  if (mask & IN_PARTITION) m.partition = r.u32('partition');
  if (r.pos !== end)
    throw r.fail(`record length ${length} disagrees with its fields (${r.pos - (end - length)} bytes)`);
  return m;
}

/** What a delivery carries besides the message itself. */
export interface DeliveryMeta {
  deliveryId: number;
  deliveryCount: number;
  partition?: number;
  offset?: number;
  receipt?: string;
  firstDeliveredAt?: number;
  /** The assignment epoch of a group member's grant; set only on connections of version 8 or later. */
  assignmentEpoch?: number;
}

export interface DecodedDelivery {
  deliveryId: number;
  message: Message;
  deliveryCount: number;
  partition: number;
  offset: number;
  /** '' when not a queue delivery. */
  receipt: string;
  firstDeliveredAt: number;
  /** -1 when the delivery carries no grant (not a group member's, or an older version). */
  assignmentEpoch: number;
}

/** The delivery facts of one decoded delivery; one instance is reused for a whole frame's deliveries. */
export class DeliveryFacts {
  deliveryId = 0;
  deliveryCount = 0;
  /** -1 when not a topic delivery. */
  partition = -1;
  offset = -1;
  /** '' when not a queue delivery. */
  receipt = '';
  firstDeliveredAt = 0;
  /** -1 when the delivery carries no grant. */
  assignmentEpoch = -1;
}

export function encodeDelivery(w: WireWriter, m: Message, meta: DeliveryMeta): void {
  let mask = 0;
  if (m.key !== null && m.key !== undefined) mask |= OUT_KEY;
  if (m.priority !== undefined) mask |= OUT_PRIORITY;
  if (m.groupId !== undefined) mask |= OUT_GROUP;
  if (m.dedupId !== undefined) mask |= OUT_DEDUP;
  if (m.routingKey !== undefined) mask |= OUT_ROUTING;
  if (meta.partition !== undefined) mask |= OUT_POSITION;
  if (meta.receipt !== undefined) mask |= OUT_LEASE;
  if (meta.assignmentEpoch !== undefined) mask |= OUT_GRANT;
  const at = w.reserveU32();
  w.u32(meta.deliveryId)
    .u16(mask)
    .str(m.id)
    .str(m.type ?? '')
    .u64(m.timestamp)
    .u32(meta.deliveryCount);
  writeHeaders(w, m.headers ?? {});
  writePayload(w, m.payload);
  if (mask & OUT_KEY) w.str(m.key as string);
  if (mask & OUT_PRIORITY) w.u32(m.priority as number);
  if (mask & OUT_GROUP) w.str(m.groupId as string);
  if (mask & OUT_DEDUP) w.str(m.dedupId as string);
  if (mask & OUT_ROUTING) w.str(m.routingKey as string);
  if (mask & OUT_POSITION) w.u32(meta.partition as number).u64(meta.offset ?? 0);
  if (mask & OUT_LEASE) w.str(meta.receipt as string).u64(meta.firstDeliveredAt ?? 0);
  if (mask & OUT_GRANT) w.u32(meta.assignmentEpoch as number);
  w.patchU32(at, w.pos - at - 4);
}

/**
 * Decodes one delivery: the message's fields into `into` (any Message-shaped object, so a client
 * fills its own message class without an intermediate object), the delivery facts into `facts`.
 * Byte payloads are copied out of the frame.
 */
export function decodeDeliveryInto<M extends Message>(r: WireReader, into: M, facts: DeliveryFacts): M {
  const length = r.u32('delivery length');
  r.need(length, 'delivery');
  const end = r.pos + length;
  facts.deliveryId = r.u32('deliveryId');
  const mask = r.u16('delivery mask');
  if ((mask & ~OUT_KNOWN) !== 0) throw r.fail(`delivery mask 0x${mask.toString(16)} sets reserved bits`);
  into.id = r.str('id');
  into.type = r.str('type');
  into.timestamp = r.u64('timestampMs');
  facts.deliveryCount = r.u32('deliveryCount');
  into.headers = readHeaders(r);
  into.payload = readPayload(r, true);
  into.key = mask & OUT_KEY ? r.str('key') : null;
  if (mask & OUT_PRIORITY) into.priority = r.u32('priority');
  if (mask & OUT_GROUP) into.groupId = r.str('groupId');
  if (mask & OUT_DEDUP) into.dedupId = r.str('dedupId');
  if (mask & OUT_ROUTING) into.routingKey = r.str('routingKey');
  if (mask & OUT_POSITION) {
    facts.partition = r.u32('partition');
    facts.offset = r.u64('offset');
  } else {
    facts.partition = -1;
    facts.offset = -1;
  }
  if (mask & OUT_LEASE) {
    facts.receipt = r.str('receipt');
    facts.firstDeliveredAt = r.u64('firstDeliveredAtMs');
  } else {
    facts.receipt = '';
    facts.firstDeliveredAt = 0;
  }
  facts.assignmentEpoch = mask & OUT_GRANT ? r.u32('assignmentEpoch') : -1;
  if (r.pos !== end) throw r.fail(`delivery length ${length} disagrees with its fields`);
  return into;
}

export function decodeDelivery(r: WireReader): DecodedDelivery {
  const facts = new DeliveryFacts();
  const message = decodeDeliveryInto<Message>(
    r,
    { id: '', type: '', timestamp: 0, key: null, headers: {}, payload: null },
    facts,
  );
  return {
    deliveryId: facts.deliveryId,
    message,
    deliveryCount: facts.deliveryCount,
    partition: facts.partition,
    offset: facts.offset,
    receipt: facts.receipt,
    firstDeliveredAt: facts.firstDeliveredAt,
    assignmentEpoch: facts.assignmentEpoch,
  };
}
