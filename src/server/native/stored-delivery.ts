// Deliveries written to the wire from their stored records (Broker.consumeStored, receiveStored,
// subscribeStored): the id, type, key and header values are copied as stored, and a JSON payload's
// stored text goes out as it is, never parsed and serialised again. For a record whose JSON text
// JSON.stringify wrote (every in-process and HTTP publish), that is byte for byte what
// encodeDelivery writes for the decoded message; for text stored as sent over the native
// protocol, it is that text. Decoding each record into strings, a header object and a payload only
// to encode them again was a fifth of the server's work per delivered message.
import {
  H_CONTENT_TYPE,
  H_DEDUP_ID,
  H_GROUP_ID,
  H_ID,
  H_PRIORITY,
  H_ROUTING_KEY,
  H_TYPE,
  RESERVED_HEADER_PREFIX,
  decodeMessage,
  type ConsumeOptions,
  type Consumer,
  type DeliveryGate,
  type LogRecord,
  type ReceiveOptions,
  type StoredQueueDelivery,
  type StoredQueueHandler,
  type StoredTopicHandler,
  type SubscribeOptions,
  type Subscription,
} from '../../broker/index.js';
import {
  OUT_DEDUP,
  OUT_GRANT,
  OUT_GROUP,
  OUT_KEY,
  OUT_LEASE,
  OUT_POSITION,
  OUT_PRIORITY,
  OUT_ROUTING,
  PAYLOAD_BYTES,
  PAYLOAD_JSON,
  encodeDelivery,
  type DeliveryMeta,
  type WireWriter,
} from '../../protocol/index.js';
import { assert } from '../../common/index.js';

/** A broker that hands out deliveries as stored (the embedded Broker does): they go to the wire without being decoded. */
export interface StoredSource {
  consumeStored(queue: string, options: ConsumeOptions, handler: StoredQueueHandler): Promise<Consumer>;
  receiveStored(queue: string, options?: ReceiveOptions): Promise<StoredQueueDelivery[]>;
  subscribeStored(
    topic: string,
    options: SubscribeOptions,
    handler: StoredTopicHandler,
    gate: DeliveryGate | null,
  ): Promise<Subscription>;
}

export function storedSource(conn: { readonly broker: object }): StoredSource | null {
  const b = conn.broker as Partial<StoredSource>;
  return typeof b.consumeStored === 'function' &&
    typeof b.receiveStored === 'function' &&
    typeof b.subscribeStored === 'function'
    ? (b as StoredSource)
    : null;
}

/** A queue delivery's receipt as its parts: `${receiptEpoch}:${receiptKey}:${receiptToken}`. */
export type ReceiptParts = Pick<StoredQueueDelivery, 'receiptEpoch' | 'receiptKey' | 'receiptToken'>;

const CHAR_W = 119;
const CHAR_COLON = 58;
const CHAR_0 = 48;
const CHAR_9 = 57;
const JSON_NULL = Buffer.from('null', 'latin1');
const NO_BYTES = new Uint8Array(0);

/**
 * True when the user headers, as a JavaScript object, keep the stored order and every entry: no
 * key repeats (an object keeps one), none is `__proto__` (an object drops it), and none starts with
 * a digit (an object puts integer-like keys first).
 */
function headersKeepTheirOrder(headers: LogRecord['headers']): boolean {
  for (let i = 0; i < headers.length; i++) {
    const k = headers[i].key;
    if (isReserved(k)) continue;
    const c = k.charCodeAt(0);
    if ((c >= CHAR_0 && c <= CHAR_9) || k === '__proto__') return false;
    for (let j = 0; j < i; j++) if (headers[j].key === k) return false;
  }
  return true;
}

// isReserved spells the prefix out character by character.
assert(RESERVED_HEADER_PREFIX === 'wharf.', 'the reserved header prefix is "wharf."');

/** Starts with `wharf.`: character by character (startsWith was a tenth of this file's time). */
function isReserved(key: string): boolean {
  return (
    key.length > 6 &&
    key.charCodeAt(0) === CHAR_W &&
    key.charCodeAt(5) === 46 && // '.'
    key.charCodeAt(1) === 104 && // 'h'
    key.charCodeAt(2) === 97 && // 'a'
    key.charCodeAt(3) === 114 && // 'r'
    key.charCodeAt(4) === 102 // 'f'
  );
}

function digitsOf(n: number): number {
  let digits = 1;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
  return digits;
}

/**
 * Writes the receipt `${epoch}:${key}:${token}` as a str from its parts: the receipt string is a
 * rope of its parts, and reading it character by character would flatten it first. False, having
 * written nothing, when the epoch is not short ASCII (then the caller writes the string).
 */
function writeReceiptParts(w: WireWriter, parts: ReceiptParts): boolean {
  const epoch = parts.receiptEpoch;
  const key = parts.receiptKey;
  const token = parts.receiptToken;
  if (epoch.length > 64 || !Number.isSafeInteger(key) || key < 0 || !Number.isSafeInteger(token) || token < 0)
    return false;
  const keyDigits = digitsOf(key);
  const tokenDigits = digitsOf(token);
  const n = epoch.length + 1 + keyDigits + 1 + tokenDigits;
  w.ensure(2 + n);
  const buf = w.buf;
  let p = w.pos + 2;
  for (let i = 0; i < epoch.length; i++) {
    const c = epoch.charCodeAt(i);
    if (c >= 0x80) return false;
    buf[p++] = c;
  }
  buf[p++] = CHAR_COLON;
  for (let i = p + keyDigits - 1, v = key; i >= p; i--, v = Math.floor(v / 10)) buf[i] = CHAR_0 + (v % 10);
  p += keyDigits;
  buf[p++] = CHAR_COLON;
  for (let i = p + tokenDigits - 1, v = token; i >= p; i--, v = Math.floor(v / 10)) buf[i] = CHAR_0 + (v % 10);
  buf.writeUInt16BE(n, w.pos);
  w.pos = p + tokenDigits;
  return true;
}

/** A stored priority (decimal ASCII) as the number the decoded message would carry. */
function storedPriority(value: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c < CHAR_0 || c > CHAR_9 || i > 15) return Number(Buffer.from(value).toString('utf8'));
    n = n * 10 + (c - CHAR_0);
  }
  return value.length === 0 ? 0 : n;
}

/**
 * Writes one delivery of `rec` (delivery layout in codec/message.ts). `receiptParts`, when given,
 * are meta.receipt's parts, written without reading the receipt string.
 */
export function encodeStoredDelivery(
  w: WireWriter,
  rec: LogRecord,
  meta: DeliveryMeta,
  receiptParts: ReceiptParts | null = null,
): void {
  const headers = rec.headers;
  let id: Uint8Array | null = null;
  let type: Uint8Array | null = null;
  let priority: Uint8Array | null = null;
  let groupId: Uint8Array | null = null;
  let dedupId: Uint8Array | null = null;
  let routingKey: Uint8Array | null = null;
  let isBytes = false;
  let userHeaders = 0;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i];
    if (!isReserved(h.key)) {
      userHeaders++;
      continue;
    }
    switch (h.key) {
      case H_ID:
        id = h.value;
        break;
      case H_TYPE:
        type = h.value;
        break;
      case H_CONTENT_TYPE:
        isBytes = h.value.length === 5; // 'bytes' vs 'json', as the decoder reads it
        break;
      case H_PRIORITY:
        priority = h.value;
        break;
      case H_GROUP_ID:
        groupId = h.value;
        break;
      case H_DEDUP_ID:
        dedupId = h.value;
        break;
      case H_ROUTING_KEY:
        routingKey = h.value;
        break;
      default:
        break; // read by the broker only (ttlMs, producer id and sequence), or from a newer version
    }
  }
  if (userHeaders > 0 && !headersKeepTheirOrder(headers)) {
    // Rare: let the message's own decoding decide which headers it keeps, and in what order.
    encodeDelivery(w, decodeMessage(rec), meta);
    return;
  }
  if (userHeaders > 0xffff) {
    encodeDelivery(w, decodeMessage(rec), meta); // refused there, with its message
    return;
  }
  let mask = 0;
  if (rec.key !== null) mask |= OUT_KEY;
  if (priority !== null) mask |= OUT_PRIORITY;
  if (groupId !== null) mask |= OUT_GROUP;
  if (dedupId !== null) mask |= OUT_DEDUP;
  if (routingKey !== null) mask |= OUT_ROUTING;
  if (meta.partition !== undefined) mask |= OUT_POSITION;
  if (meta.receipt !== undefined) mask |= OUT_LEASE;
  if (meta.assignmentEpoch !== undefined) mask |= OUT_GRANT;
  const at = w.reserveU32();
  w.u32(meta.deliveryId).u16(mask);
  if (id === null) w.str('');
  else w.strBytes(id);
  if (type === null) w.str('');
  else w.strBytes(type);
  w.u64(rec.timestampMs).u32(meta.deliveryCount);
  w.u16(userHeaders);
  for (let i = 0; userHeaders > 0 && i < headers.length; i++) {
    const h = headers[i];
    if (isReserved(h.key)) continue;
    w.str(h.key).bytes(h.value); // lstr and bytes share a layout: u32 length + bytes
  }
  if (isBytes) w.u8(PAYLOAD_BYTES).bytes(rec.value ?? NO_BYTES);
  else w.u8(PAYLOAD_JSON).bytes(rec.value ?? JSON_NULL);
  if (rec.key !== null) w.strBytes(rec.key);
  if (priority !== null) w.u32(storedPriority(priority));
  if (groupId !== null) w.strBytes(groupId);
  if (dedupId !== null) w.strBytes(dedupId);
  if (routingKey !== null) w.strBytes(routingKey);
  if (meta.partition !== undefined) w.u32(meta.partition).u64(meta.offset ?? 0);
  if (meta.receipt !== undefined) {
    if (receiptParts === null || !writeReceiptParts(w, receiptParts)) w.str(meta.receipt);
    w.u64(meta.firstDeliveredAt ?? 0);
  }
  if (meta.assignmentEpoch !== undefined) w.u32(meta.assignmentEpoch);
  w.patchU32(at, w.pos - at - 4);
}
