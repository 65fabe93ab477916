// The record batch codec: Kafka RecordBatch v2, byte for byte, as pure functions. The log stores
// batches exactly as encoded here, so a Kafka front-end can serve fetches without re-encoding.
//
// RecordBatch (all integers big-endian; offsets are bytes from the batch start):
//    0  baseOffset            int64
//    8  batchLength           int32   bytes after this field (batch size - 12)
//   12  partitionLeaderEpoch  int32   (Wharf writes 0)
//   16  magic                 int8    = 2
//   17  crc                   uint32  CRC32C of bytes [21, end)
//   21  attributes            int16   bits 0-2 compression (Wharf writes 0 = none), bit 3 timestamp
//                                     type (0 = create time), bit 4 transactional, bit 5 control
//   23  lastOffsetDelta       int32   = recordCount - 1
//   27  baseTimestamp         int64   timestamp of the first record
//   35  maxTimestamp          int64   largest record timestamp
//   43  producerId            int64   -1 when none
//   51  producerEpoch         int16   -1 when none
//   53  baseSequence          int32   -1 when none
//   57  recordCount           int32
//   61  records               recordCount x Record
//
// Record (varint = zigzag int32, varlong = zigzag int64, as in protobuf):
//   length varint (bytes after this field) | attributes int8 (0) | timestampDelta varlong |
//   offsetDelta varint | keyLength varint (-1 = null) | key bytes | valueLength varint (-1 = null) |
//   value bytes | headerCount varint | headers: headerCount x
//   (headerKeyLength varint | headerKey utf8 | headerValueLength varint (-1 = null) | headerValue)
import { crc32c } from '@node-rs/crc32';
import { WharfError, readInt64, writeInt64 } from '../common/index.js';
import type { BatchProducerInfo, LogRecord, RecordInput } from './types.js';
import { ByteReader, sizeOfVarint, sizeOfVarlong, writeVarint, writeVarlong } from './varint.js';

export const BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the bytes not counted by batchLength. */
export const BATCH_LENGTH_PREFIX_BYTES = 12;
export const BATCH_MAGIC = 2;
export const CRC_START = 21;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;
/** Record timestamps are limited so a varlong delta stays exact (see varint.ts). */
export const MAX_TIMESTAMP_MS = 2 ** 52 - 1;

const EMPTY_BYTES = new Uint8Array(0);

/**
 * UTF-8 bytes of header keys. Keys repeat on every message ('wharf.id', 'wharf.type', ...), and
 * encoding them each time was a third of the encode cost; bounded, cleared when full.
 */
const headerKeyBytes = new Map<string, Buffer>();
const MAX_CACHED_HEADER_KEYS = 1024;

function encodedHeaderKey(key: string): Buffer {
  let bytes = headerKeyBytes.get(key);
  if (bytes === undefined) {
    bytes = Buffer.from(key, 'utf8');
    if (headerKeyBytes.size >= MAX_CACHED_HEADER_KEYS) headerKeyBytes.clear();
    headerKeyBytes.set(key, bytes);
  }
  return bytes;
}

export interface BatchHeader {
  baseOffset: number;
  /** Whole batch size in bytes (batchLength + 12). */
  sizeBytes: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestampMs: number;
  maxTimestampMs: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export interface EncodeBatchInput {
  baseOffset: number;
  records: RecordInput[];
  producer?: BatchProducerInfo;
  partitionLeaderEpoch?: number;
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.length));

/** Bytes of one record after its length prefix. */
function recordBodyBytes(r: RecordInput, timestampDelta: number, offsetDelta: number): number {
  const keyBytes = r.key === null ? 0 : r.key.length;
  const valueBytes = r.value === null ? 0 : r.value.length;
  let size =
    1 +
    sizeOfVarlong(timestampDelta) +
    sizeOfVarint(offsetDelta) +
    sizeOfVarint(r.key === null ? -1 : keyBytes) +
    keyBytes +
    sizeOfVarint(r.value === null ? -1 : valueBytes) +
    valueBytes +
    sizeOfVarint(r.headers.length);
  const headers = r.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i];
    const hk = encodedHeaderKey(h.key).length;
    size += sizeOfVarint(hk) + hk + sizeOfVarint(h.value.length) + h.value.length;
  }
  return size;
}

/**
 * Encodes records into one RecordBatch v2 buffer (one allocation, from alloc when given: the
 * disk log passes pooled memory). Inputs are assumed validated.
 */
export function encodeBatch(
  input: EncodeBatchInput,
  alloc: (sizeBytes: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  const { records, producer } = input;
  const count = records.length;
  if (count === 0) throw new WharfError('INVALID_ARGUMENT', 'a record batch needs at least one record');
  const baseTimestampMs = records[0].timestampMs;
  let maxTimestampMs = baseTimestampMs;
  const bodySizes = new Array<number>(count);
  let total = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const r = records[i];
    if (r.timestampMs > maxTimestampMs) maxTimestampMs = r.timestampMs;
    const body = recordBodyBytes(r, r.timestampMs - baseTimestampMs, i);
    bodySizes[i] = body;
    total += sizeOfVarint(body) + body;
  }
  const buf = alloc(total);
  let attributes = 0;
  if (producer?.isTransactional) attributes |= ATTR_TRANSACTIONAL;
  if (producer?.isControl) attributes |= ATTR_CONTROL;
  writeInt64(buf, 0, input.baseOffset);
  buf.writeInt32BE(total - BATCH_LENGTH_PREFIX_BYTES, 8);
  buf.writeInt32BE(input.partitionLeaderEpoch ?? 0, 12);
  buf[16] = BATCH_MAGIC;
  buf.writeInt16BE(attributes, 21);
  buf.writeInt32BE(count - 1, 23);
  writeInt64(buf, 27, baseTimestampMs);
  writeInt64(buf, 35, maxTimestampMs);
  writeInt64(buf, 43, producer?.producerId ?? -1);
  buf.writeInt16BE(producer?.producerEpoch ?? -1, 51);
  buf.writeInt32BE(producer?.baseSequence ?? -1, 53);
  buf.writeInt32BE(count, 57);
  let pos = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const r = records[i];
    pos = writeVarint(buf, pos, bodySizes[i]);
    buf[pos++] = 0; // record attributes: unused in v2
    pos = writeVarlong(buf, pos, r.timestampMs - baseTimestampMs);
    pos = writeVarint(buf, pos, i);
    pos = writeNullableBytes(buf, pos, r.key);
    pos = writeNullableBytes(buf, pos, r.value);
    pos = writeVarint(buf, pos, r.headers.length);
    const headers = r.headers;
    for (let h = 0; h < headers.length; h++) {
      const hk = encodedHeaderKey(headers[h].key);
      pos = writeVarint(buf, pos, hk.length);
      buf.set(hk, pos);
      pos = writeNullableBytes(buf, pos + hk.length, headers[h].value);
    }
  }
  if (pos !== total) throw new WharfError('INTERNAL', `invariant violated: encoded ${pos} of ${total} batch bytes`);
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), 17);
  return buf;
}

/** Below this, a byte loop beats TypedArray#set's call overhead (ids, header values). */
const SMALL_COPY_BYTES = 32;

function writeNullableBytes(buf: Buffer, pos: number, bytes: Uint8Array | null): number {
  if (bytes === null) return writeVarint(buf, pos, -1);
  const n = bytes.length;
  pos = writeVarint(buf, pos, n);
  if (n < SMALL_COPY_BYTES) for (let i = 0; i < n; i++) buf[pos + i] = bytes[i];
  else buf.set(bytes, pos);
  return pos + n;
}

/** Reads the fixed 61-byte header at pos (the caller ensures the bytes are there). */
export function readBatchHeader(buf: Buffer, pos: number): BatchHeader {
  return {
    baseOffset: readInt64(buf, pos),
    sizeBytes: buf.readInt32BE(pos + 8) + BATCH_LENGTH_PREFIX_BYTES,
    partitionLeaderEpoch: buf.readInt32BE(pos + 12),
    magic: buf.readInt8(pos + 16),
    crc: buf.readUInt32BE(pos + 17),
    attributes: buf.readInt16BE(pos + 21),
    lastOffsetDelta: buf.readInt32BE(pos + 23),
    baseTimestampMs: readInt64(buf, pos + 27),
    maxTimestampMs: readInt64(buf, pos + 35),
    producerId: readInt64(buf, pos + 43),
    producerEpoch: buf.readInt16BE(pos + 51),
    baseSequence: buf.readInt32BE(pos + 53),
    recordCount: buf.readInt32BE(pos + 57),
  };
}

/**
 * Why a header cannot start a valid batch, or null when it is plausible. Checks only what the
 * header itself says; the CRC is checked separately over the whole batch.
 */
export function headerProblem(h: BatchHeader): string | null {
  if (h.magic !== BATCH_MAGIC) return `magic byte ${h.magic} (expected ${BATCH_MAGIC})`;
  if (h.sizeBytes < BATCH_HEADER_BYTES) return `batch length ${h.sizeBytes - BATCH_LENGTH_PREFIX_BYTES} too small`;
  if (h.recordCount < 1 || h.lastOffsetDelta !== h.recordCount - 1)
    return `record count ${h.recordCount} does not match last offset delta ${h.lastOffsetDelta}`;
  if (h.baseOffset < 0 || !Number.isSafeInteger(h.baseOffset)) return `base offset ${h.baseOffset} out of range`;
  return null;
}

/** CRC32C of the batch at pos (size bytes), as stored and as computed. */
export function batchCrc(buf: Buffer, pos: number, sizeBytes: number): { stored: number; computed: number } {
  return {
    stored: buf.readUInt32BE(pos + 17),
    computed: crc32c(buf.subarray(pos + CRC_START, pos + sizeBytes)),
  };
}

/**
 * Decodes the records of the batch at pos with offset >= fromOffset into out, until out holds
 * maxRecords. key/value/header values are Uint8Array views of buf (no copy; a plain view costs a
 * fifth of Buffer#subarray). The batch's CRC must have been checked.
 */
export function decodeRecordsInto(
  buf: Buffer,
  pos: number,
  fromOffset: number,
  out: LogRecord[],
  maxRecords: number,
): void {
  const baseOffset = readInt64(buf, pos);
  const baseTimestampMs = readInt64(buf, pos + 27);
  const count = buf.readInt32BE(pos + 57);
  const end = pos + buf.readInt32BE(pos + 8) + BATCH_LENGTH_PREFIX_BYTES;
  const reader = new ByteReader(buf, pos + BATCH_HEADER_BYTES, end);
  // Records of a batch usually carry the same header keys in the same order: reuse the string
  // decoded for the previous record when the bytes match (saves a UTF-8 decode per header).
  const keyCache: HeaderKeyCache = { positions: [], lengths: [], strings: [] };
  for (let i = 0; i < count && out.length < maxRecords; i++) {
    const length = reader.readVarint();
    const recordEnd = reader.pos + length;
    if (length < 0 || recordEnd > end) throw corruptRecord(pos, i, 'record length');
    reader.readInt8();
    const timestampMs = baseTimestampMs + reader.readVarlong();
    const offset = baseOffset + reader.readVarint();
    if (offset < fromOffset) {
      reader.pos = recordEnd; // skip without decoding fields: a fetch often starts mid-batch
      continue;
    }
    const keyLength = reader.readVarint();
    const key = keyLength < 0 ? null : reader.readView(keyLength);
    const valueLength = reader.readVarint();
    const value = valueLength < 0 ? null : reader.readView(valueLength);
    const headerCount = reader.readVarint();
    if (headerCount < 0 || headerCount > length) throw corruptRecord(pos, i, 'header count');
    const headers = new Array<{ key: string; value: Uint8Array }>(headerCount);
    for (let h = 0; h < headerCount; h++) {
      const hk = readHeaderKey(reader, reader.readVarint(), h, keyCache);
      const hvLength = reader.readVarint();
      headers[h] = { key: hk, value: hvLength < 0 ? EMPTY_BYTES : reader.readView(hvLength) };
    }
    if (reader.pos !== recordEnd) throw corruptRecord(pos, i, 'record length');
    out.push({ offset, timestampMs, key, value, headers });
  }
}

interface HeaderKeyCache {
  positions: number[];
  lengths: number[];
  strings: string[];
}

function readHeaderKey(reader: ByteReader, length: number, index: number, cache: HeaderKeyCache): string {
  const start = reader.pos;
  if (index < cache.strings.length && cache.lengths[index] === length) {
    const buf = reader.buf;
    const prev = cache.positions[index];
    let same = start + length <= reader.end;
    for (let k = 0; same && k < length; k++) same = buf[start + k] === buf[prev + k];
    if (same) {
      reader.pos += length;
      return cache.strings[index];
    }
  }
  const key = reader.readUtf8(length);
  cache.positions[index] = start;
  cache.lengths[index] = length;
  cache.strings[index] = key;
  return key;
}

function corruptRecord(batchPos: number, index: number, what: string): WharfError {
  return new WharfError('CORRUPT_DATA', `malformed record ${index} in the batch at byte ${batchPos}: bad ${what}`, {
    details: { position: batchPos, record: index },
  });
}

/** A decoded batch, for tests, tools and readers of readBatches(). */
export interface DecodedBatch {
  header: BatchHeader;
  records: LogRecord[];
}

/** Decodes one whole batch, verifying its header and CRC. */
export function decodeBatch(bytes: Uint8Array): DecodedBatch {
  const buf = asBuffer(bytes);
  if (buf.length < BATCH_HEADER_BYTES)
    throw new WharfError('CORRUPT_DATA', `record batch too short: ${buf.length} bytes`);
  const header = readBatchHeader(buf, 0);
  const problem = headerProblem(header);
  if (problem !== null) throw new WharfError('CORRUPT_DATA', `invalid record batch: ${problem}`);
  if (header.sizeBytes !== buf.length)
    throw new WharfError('CORRUPT_DATA', `record batch says ${header.sizeBytes} bytes but has ${buf.length}`);
  const { stored, computed } = batchCrc(buf, 0, header.sizeBytes);
  if (stored !== computed)
    throw new WharfError('CORRUPT_DATA', `record batch CRC mismatch: stored ${stored}, computed ${computed}`);
  const records: LogRecord[] = [];
  decodeRecordsInto(buf, 0, 0, records, Infinity);
  if (records.length !== header.recordCount)
    throw new WharfError(
      'CORRUPT_DATA',
      `record batch holds ${records.length} records, header says ${header.recordCount}`,
    );
  return { header, records };
}
