// Messages <-> log records, for topics, queues and exchanges alike.
// Record layout: key = the message key (UTF-8) or null; value = payload bytes; headers = the user's
// headers plus reserved `wharf.*` headers for the message's own fields (id, type, content type,
// priority, groupId, dedupId, routingKey, ttlMs, and an idempotent producer's producerId + sequence,
// which are never shown to consumers). `wharf.ct` says whether the value is JSON or bytes.
// Decoding is the consume hot path: no intermediate objects, ASCII fast path for short strings.
import { randomBytes } from 'node:crypto';
import { JsonText, LIMITS, WharfError, latin1Text } from '../common/index.js';
import type { LogRecord, RecordHeader, RecordInput } from '../storage/index.js';
import type { JsonValue, Message, MessageInput, Payload } from './types.js';

export const RESERVED_HEADER_PREFIX = 'wharf.';
export const H_ID = 'wharf.id';
export const H_TYPE = 'wharf.type';
export const H_CONTENT_TYPE = 'wharf.ct';
export const H_PRIORITY = 'wharf.priority';
export const H_GROUP_ID = 'wharf.groupId';
export const H_DEDUP_ID = 'wharf.dedupId';
export const H_ROUTING_KEY = 'wharf.routingKey';
export const H_TTL_MS = 'wharf.ttlMs';
/** Idempotent producer (src/broker/idempotence.ts): stored by the same append as the message, so no crash separates them. */
export const H_PRODUCER_ID = 'wharf.pid';
export const H_SEQUENCE = 'wharf.seq';

const CT_JSON = Buffer.from('json');
const CT_BYTES = Buffer.from('bytes');
/** ignoreBOM: a leading U+FEFF is text like any other (by default the decoder drops it). */
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

// ------------------------------------------------------------------ ids

const ID_CHARS = 21;
const ID_MS_CHARS = 9;
const ID_SEQ_CHARS = 4;
const ID_SEQ_LIMIT = 36 ** ID_SEQ_CHARS;
/** Ids and sequences are written into slabs of this size, so their bytes cost no allocation of their own. */
const ID_SLAB_BYTES = 16 * 1024;
const BASE36 = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz', 'latin1');
/** 8 hex chars of process randomness, so two processes do not collide. */
const idSuffix = Buffer.from(randomBytes(4).toString('hex'), 'latin1');
let idSeq = 0;
let idLastMs = 0;
/** The ms part of the current ms's ids, as bytes (formatted once per ms). */
const idMsPrefix = Buffer.alloc(ID_MS_CHARS);
let idSlab = Buffer.allocUnsafe(ID_SLAB_BYTES);
// The slab's memory and where it starts in it, read once per slab: a typed array's .buffer and
// .byteOffset are calls into the engine, not field loads (about 15 ns each on Node 20).
let idSlabMemory = idSlab.buffer;
let idSlabStart = idSlab.byteOffset;
let idSlabUsed = 0;

/** Reserves n bytes of the current slab (a fresh slab when it is full); returns where they start. */
function slabTake(n: number): number {
  if (idSlabUsed + n > ID_SLAB_BYTES) {
    idSlab = Buffer.allocUnsafe(ID_SLAB_BYTES);
    idSlabMemory = idSlab.buffer;
    idSlabStart = idSlab.byteOffset;
    idSlabUsed = 0;
  }
  const at = idSlabUsed;
  idSlabUsed += n;
  return at;
}

/** A safe integer >= 0 as decimal ASCII bytes (a stored sequence), written into the slab: no string, no buffer of its own. */
function decimalBytes(n: number): Uint8Array {
  let digits = 1;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
  const at = slabTake(digits);
  const slab = idSlab;
  for (let i = at + digits - 1, v = n; i >= at; i--, v = Math.floor(v / 10)) slab[i] = 48 + (v % 10);
  return new Uint8Array(idSlabMemory, idSlabStart + at, digits);
}

function formatMsPrefix(ms: number): void {
  const text = ms.toString(36).padStart(ID_MS_CHARS, '0');
  if (!Number.isSafeInteger(ms) || ms < 0 || text.length !== ID_MS_CHARS) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `clock value ${ms} ms is not a time a message id can hold (0 to 36^9 - 1 ms)`,
    );
  }
  idMsPrefix.write(text, 0, 'latin1');
}

/**
 * The ASCII bytes of a new message id (newMessageId), as a view of a slab whose bytes are never
 * written again: a stored record takes them as they are, and its text is one flat string (not a
 * rope of four parts that every write to the wire would flatten again).
 */
function mintIdBytes(nowMs: number): Uint8Array {
  // Whole ms (a sub-ms clock is welcome), and the prefix formatted before any state changes: a
  // clock value that cannot be formatted throws and leaves the id sequence as it was.
  const ms = Math.floor(nowMs);
  if (ms > idLastMs) {
    formatMsPrefix(ms);
    idLastMs = ms;
    idSeq = 0;
  } else if (idSeq + 1 >= ID_SEQ_LIMIT) {
    // 36^4 ids in one ms: borrow the next ms so order and uniqueness hold.
    formatMsPrefix(idLastMs + 1);
    idLastMs++;
    idSeq = 0;
  } else {
    idSeq++;
  }
  const at = slabTake(ID_CHARS);
  const slab = idSlab;
  for (let i = 0; i < ID_MS_CHARS; i++) slab[at + i] = idMsPrefix[i];
  let seq = idSeq;
  for (let i = ID_MS_CHARS + ID_SEQ_CHARS - 1; i >= ID_MS_CHARS; i--) {
    slab[at + i] = BASE36[seq % 36];
    seq = Math.floor(seq / 36);
  }
  for (let i = 0; i < idSuffix.length; i++) slab[at + ID_MS_CHARS + ID_SEQ_CHARS + i] = idSuffix[i];
  return new Uint8Array(idSlabMemory, idSlabStart + at, ID_CHARS);
}

/**
 * A unique, time-ordered id: 9 base-36 chars of ms, 4 of a per-ms sequence, 8 hex of process
 * randomness. Sorts by creation time within a process.
 */
export function newMessageId(nowMs: number = Date.now()): string {
  return latin1Text(mintIdBytes(nowMs), 0, ID_CHARS);
}

// ------------------------------------------------------------------ encode

export interface EncodedMessage {
  id: string;
  record: RecordInput;
  /** Encoded size as counted against maxMessageBytes. */
  sizeBytes: number;
}

/**
 * Where a message sits in a publish call, for error texts: a label, or its index in the batch
 * (formatted as messages[i] only when an error is thrown: no string per message on the hot path).
 */
export type MessageWhere = string | number;

function label(where: MessageWhere): string {
  return typeof where === 'number' ? `messages[${where}]` : where;
}

function invalid(what: string, fix: string): WharfError {
  return new WharfError('INVALID_ARGUMENT', `${what}; ${fix}`);
}

// The field is read by the caller (input.priority, not input[field]): a keyed read per field was a
// visible cost on the publish hot path.
function optionalString(v: unknown, field: string, where: MessageWhere): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`${label(where)}.${field} is ${typeof v}`, 'pass a string or leave it out');
  return v;
}

/** A UTF-8 string field with its maxFieldBytes bound (a JS string of n units is at most 3n bytes). */
function boundedString(v: unknown, field: string, where: MessageWhere): string | undefined {
  const s = optionalString(v, field, where);
  if (s !== undefined && s.length * 3 > LIMITS.maxFieldBytes) {
    const bytes = Buffer.byteLength(s, 'utf8');
    if (bytes > LIMITS.maxFieldBytes)
      throw invalid(
        `${label(where)}.${field} is ${bytes} bytes (limit maxFieldBytes ${LIMITS.maxFieldBytes})`,
        'shorten it or move the data into the payload',
      );
  }
  return s;
}

function optionalInt(
  v: unknown,
  field: string,
  where: MessageWhere,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalid(
      `${label(where)}.${field} is ${JSON.stringify(v)}`,
      max === Number.MAX_SAFE_INTEGER
        ? `pass an integer >= ${min} or leave it out`
        : `pass an integer from ${min} to ${max} or leave it out`,
    );
  }
  return v;
}

/** A JSON payload's UTF-8 text as stored (undefined as null), or why it cannot be: the error JSON.stringify threw, or undefined (not JSON). */
function jsonText(payload: Payload | undefined): Uint8Array | Error | undefined {
  try {
    const text = JSON.stringify(payload === undefined ? null : payload);
    return text === undefined ? undefined : Buffer.from(text, 'utf8');
  } catch (err) {
    return err as Error;
  }
}

/** A JSON payload's UTF-8 bytes as the broker stores them, or null when it is not JSON (single-publishes.ts takes it at the call). */
export function jsonPayloadBytes(payload: Payload | undefined): Uint8Array | null {
  const bytes = jsonText(payload);
  return bytes instanceof Uint8Array ? bytes : null;
}

/** A JSON payload's UTF-8 bytes (bytes and JsonText payloads are stored as they are, by the caller). */
function encodeJsonPayload(payload: Payload | undefined, where: MessageWhere): Uint8Array {
  const bytes = jsonText(payload);
  if (bytes instanceof Error)
    throw new WharfError(
      'INVALID_ARGUMENT',
      `${label(where)}.payload cannot be serialised as JSON (${bytes.message}); pass JSON or a Uint8Array`,
    );
  if (bytes === undefined) throw invalid(`${label(where)}.payload is not JSON`, 'pass JSON or a Uint8Array');
  return bytes;
}

/**
 * Validates one MessageInput and turns it into a log record. Throws INVALID_ARGUMENT for a bad field
 * and MESSAGE_TOO_LARGE past maxMessageBytes; never touches storage.
 */
/** Appends a reserved header; returns the bytes it counts against maxMessageBytes. */
function pushHeader(headers: RecordHeader[], key: string, value: string): number {
  const bytes = Buffer.from(value, 'utf8');
  headers.push({ key, value: bytes });
  return key.length + bytes.length;
}

/** The last producer id encoded and its bytes: a batch is one producer's, so its id is encoded once (the bytes are never written to). */
let lastProducerId = '';
let lastProducerIdBytes: Uint8Array = new Uint8Array(0);

function producerIdBytes(producerId: string): Uint8Array {
  if (producerId !== lastProducerId) {
    lastProducerIdBytes = Buffer.from(producerId, 'utf8');
    lastProducerId = producerId;
  }
  return lastProducerIdBytes;
}

export function encodeMessage(
  input: MessageInput,
  timestampMs: number,
  maxMessageBytes: number,
  where: MessageWhere = 'message',
): EncodedMessage {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalid(
      `${label(where)} is ${input === null ? 'null' : typeof input}`,
      'pass an object like { payload: {...} }',
    );
  }
  const ownId = optionalString(input.id, 'id', where);
  const idBytes = ownId === undefined ? mintIdBytes(timestampMs) : Buffer.from(ownId, 'utf8');
  const id = ownId ?? latin1Text(idBytes, 0, ID_CHARS);
  if (id.length === 0 || id.length > 256)
    throw invalid(`${label(where)}.id has ${id.length} characters`, 'use 1-256 characters');
  const type = boundedString(input.type, 'type', where);
  const key = input.key;
  if (key !== undefined && key !== null && typeof key !== 'string')
    throw invalid(`${label(where)}.key is ${typeof key}`, 'pass a string or null');
  if (typeof key === 'string') boundedString(key, 'key', where);
  const priority = optionalInt(input.priority, 'priority', where, 0, LIMITS.maxPriority);
  const groupId = boundedString(input.groupId, 'groupId', where);
  const dedupId = boundedString(input.dedupId, 'dedupId', where);
  const routingKey = boundedString(input.routingKey, 'routingKey', where);
  const ttlMs = optionalInt(input.ttlMs, 'ttlMs', where, 1);
  optionalInt(input.delayMs, 'delayMs', where, 0);
  optionalInt(input.partition, 'partition', where, 0);
  const producerId = optionalString(input.producerId, 'producerId', where);
  const sequence = optionalInt(input.sequence, 'sequence', where, 0);

  const headers: RecordHeader[] = [];
  let size = 0;
  headers.push({ key: H_ID, value: idBytes });
  size += H_ID.length + idBytes.length;
  if (type !== undefined) size += pushHeader(headers, H_TYPE, type);
  if (priority !== undefined) size += pushHeader(headers, H_PRIORITY, String(priority));
  if (groupId !== undefined) size += pushHeader(headers, H_GROUP_ID, groupId);
  if (dedupId !== undefined) size += pushHeader(headers, H_DEDUP_ID, dedupId);
  if (routingKey !== undefined) size += pushHeader(headers, H_ROUTING_KEY, routingKey);
  if (ttlMs !== undefined) size += pushHeader(headers, H_TTL_MS, String(ttlMs));
  if (producerId !== undefined && sequence !== undefined) {
    // Broker bookkeeping, not counted against maxMessageBytes (a message that fits must fit when retried idempotently).
    headers.push({ key: H_PRODUCER_ID, value: producerIdBytes(producerId) });
    headers.push({ key: H_SEQUENCE, value: decimalBytes(sequence) });
  }

  if (input.headers !== undefined) {
    const h = input.headers;
    if (h === null || typeof h !== 'object' || Array.isArray(h))
      throw invalid(`${label(where)}.headers is not an object`, 'pass { name: "string value" }');
    let count = 0;
    for (const k in h) {
      if (!Object.prototype.hasOwnProperty.call(h, k)) continue;
      const v = h[k];
      if (typeof v !== 'string')
        throw invalid(`${label(where)}.headers[${JSON.stringify(k)}] is ${typeof v}`, 'header values must be strings');
      if (k.startsWith(RESERVED_HEADER_PREFIX))
        throw invalid(
          `${label(where)}.headers[${JSON.stringify(k)}] uses the reserved prefix "wharf."`,
          'rename the header',
        );
      if (k.length === 0 || Buffer.byteLength(k) > LIMITS.maxHeaderKeyBytes)
        throw invalid(
          `${label(where)}.headers key ${JSON.stringify(k.slice(0, 40))} is empty or longer than ${LIMITS.maxHeaderKeyBytes} bytes`,
          'shorten it',
        );
      const value = Buffer.from(v, 'utf8');
      if (value.length > LIMITS.maxHeaderValueBytes)
        throw invalid(
          `${label(where)}.headers[${JSON.stringify(k)}] is ${value.length} bytes (limit maxHeaderValueBytes ${LIMITS.maxHeaderValueBytes})`,
          'move large data into the payload',
        );
      if (++count > LIMITS.maxHeaders)
        throw invalid(
          `${label(where)} has more than ${LIMITS.maxHeaders} headers (maxHeaders)`,
          'merge some headers or move them into the payload',
        );
      headers.push({ key: k, value });
      size += Buffer.byteLength(k) + value.length;
    }
  }

  // No object per message for the payload and its kind: bytes (a JsonText is JSON already) or JSON.
  const rawPayload = input.payload;
  const isBytes = rawPayload instanceof Uint8Array;
  const value = isBytes ? rawPayload : encodeJsonPayload(rawPayload, where);
  headers.push({ key: H_CONTENT_TYPE, value: isBytes && !(rawPayload instanceof JsonText) ? CT_BYTES : CT_JSON });
  size += H_CONTENT_TYPE.length + 5;
  const keyBytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : null;
  size += value.length + (keyBytes === null ? 0 : keyBytes.length);
  if (size > maxMessageBytes) {
    throw new WharfError(
      'MESSAGE_TOO_LARGE',
      `${label(where)} is ${size} bytes encoded, over the limit of ${maxMessageBytes} (maxMessageBytes); shrink the payload or raise maxMessageBytes`,
      {
        details: { limit: 'maxMessageBytes', value: maxMessageBytes, sizeBytes: size },
      },
    );
  }
  return { id, record: { key: keyBytes, value, headers, timestampMs }, sizeBytes: size };
}

// ------------------------------------------------------------------ decode

/**
 * UTF-8 to string; short ASCII (ids, types, header values) as Latin-1, without the decoder. The
 * result is one flat string, so writing it to the wire later needs no flattening (a string built by
 * += is a rope that every later read flattens first).
 */
export function utf8(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n <= 64) {
    for (let i = 0; i < n; i++) if (bytes[i] > 127) return utf8Decoder.decode(bytes);
    return latin1Text(bytes, 0, n);
  }
  return utf8Decoder.decode(bytes);
}

/**
 * The payload of a stored record. JSON is parsed. Bytes are a private copy, or with `shareBytes` a
 * view of the record's bytes — only when the read buffer belongs to this read alone (disk storage
 * reads into a fresh buffer per call; memory storage hands out views of the stored batch).
 */
export function decodePayload(value: Uint8Array | null, isBytes: boolean, shareBytes = false): Payload {
  if (value === null) return isBytes ? new Uint8Array(0) : null;
  if (!isBytes) return JSON.parse(utf8(value)) as JsonValue;
  if (shareBytes) return new Uint8Array(value.buffer, value.byteOffset, value.length);
  // A plain Uint8Array copy (Buffer#slice would be a view).
  const copy = new Uint8Array(value.length);
  copy.set(value);
  return copy;
}

/**
 * Fills the Message fields of `out` from a record. `out` is created by the caller with every field
 * already present (a stable object shape keeps the consume loop monomorphic).
 */
export function decodeInto<T extends Message>(rec: LogRecord, out: T, shareBytes = false): T {
  const headers = rec.headers;
  let isBytes = false;
  let user: Record<string, string> | null = null;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i];
    const k = h.key;
    if (k.charCodeAt(0) === 119 /* w */ && k.startsWith(RESERVED_HEADER_PREFIX)) {
      switch (k) {
        case H_ID:
          out.id = utf8(h.value);
          break;
        case H_TYPE:
          out.type = utf8(h.value);
          break;
        case H_CONTENT_TYPE:
          isBytes = h.value.length === 5; // 'bytes' vs 'json'
          break;
        case H_PRIORITY:
          out.priority = Number(utf8(h.value));
          break;
        case H_GROUP_ID:
          out.groupId = utf8(h.value);
          break;
        case H_DEDUP_ID:
          out.dedupId = utf8(h.value);
          break;
        case H_ROUTING_KEY:
          out.routingKey = utf8(h.value);
          break;
        default:
          break; // a reserved header of a newer version, or one only the broker reads (ttlMs, pid, seq)
      }
    } else {
      if (user === null) user = {};
      user[k] = utf8(h.value);
    }
  }
  out.headers = user ?? {};
  out.timestamp = rec.timestampMs;
  out.key = rec.key === null ? null : utf8(rec.key);
  out.payload = decodePayload(rec.value, isBytes, shareBytes);
  return out;
}

/** A record as a plain Message (queues, exchanges, tools). */
export function decodeMessage(rec: LogRecord): Message {
  return decodeInto(rec, { id: '', type: '', timestamp: 0, key: null, headers: {}, payload: null } as Message);
}

/** The reserved ttlMs header of a record, or undefined. */
export function recordTtlMs(rec: LogRecord): number | undefined {
  for (const h of rec.headers) if (h.key === H_TTL_MS) return Number(utf8(h.value));
  return undefined;
}
