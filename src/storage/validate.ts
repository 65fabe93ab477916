// Checks on what callers hand the storage layer. Bad input is the caller's mistake and is
// rejected with INVALID_ARGUMENT before anything is assigned an offset or written.
import { LIMITS, WharfError } from '../common/index.js';
import { MAX_TIMESTAMP_MS } from './record-batch.js';
import type { BatchProducerInfo, JournalOptions, LogOptions, ReadOptions, RecordInput } from './types.js';

const FSYNC_POLICIES = new Set(['always', 'interval', 'never']);
/** Positions in .index files are int32, so a segment must stay below 2 GiB. */
export const MAX_SEGMENT_BYTES = 2 ** 31 - 1;

function invalid(message: string): WharfError {
  return new WharfError('INVALID_ARGUMENT', message);
}

export function validateOffset(offset: unknown, what: string): number {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
    throw invalid(`${what} must be a non-negative integer, got ${String(offset)}`);
  return offset;
}

export function validateTimestamp(ts: unknown, what: string): number {
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts))
    throw invalid(`${what} must be an integer number of milliseconds, got ${String(ts)}`);
  return ts;
}

export function validateReadOptions(options: ReadOptions | undefined): { maxBytes: number; maxRecords: number } {
  if (options === null || typeof options !== 'object') throw invalid('read options { maxBytes } are required');
  const { maxBytes, maxRecords } = options;
  if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 1)
    throw invalid(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
  if (
    maxRecords !== undefined &&
    (typeof maxRecords !== 'number' || !Number.isSafeInteger(maxRecords) || maxRecords < 1)
  )
    throw invalid(`maxRecords must be a positive integer, got ${String(maxRecords)}`);
  if (options.wholeBatches !== undefined && typeof options.wholeBatches !== 'boolean')
    throw invalid(`wholeBatches must be a boolean, got ${String(options.wholeBatches)}`);
  return { maxBytes: Math.min(maxBytes, LIMITS.maxReadBytes), maxRecords: maxRecords ?? Number.MAX_SAFE_INTEGER };
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

export function validateRecords(records: unknown): RecordInput[] {
  if (!Array.isArray(records) || records.length === 0) throw invalid('append needs a non-empty array of records');
  if (records.length > LIMITS.maxBatchMessages)
    throw invalid(`append got ${records.length} records; at most ${LIMITS.maxBatchMessages} fit one batch`);
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as RecordInput;
    if (r === null || typeof r !== 'object') throw invalid(`record ${i} is not an object`);
    if (r.key !== null && !isBytes(r.key)) throw invalid(`record ${i}: key must be a Uint8Array or null`);
    if (r.value !== null && !isBytes(r.value)) throw invalid(`record ${i}: value must be a Uint8Array or null`);
    const ts = r.timestampMs;
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0 || ts > MAX_TIMESTAMP_MS)
      throw invalid(`record ${i}: timestampMs must be an integer in [0, 2^52), got ${String(ts)}`);
    if (!Array.isArray(r.headers)) throw invalid(`record ${i}: headers must be an array`);
    for (const h of r.headers) {
      if (h === null || typeof h !== 'object' || typeof h.key !== 'string' || !isBytes(h.value))
        throw invalid(`record ${i}: each header needs a string key and a Uint8Array value`);
    }
  }
  return records as RecordInput[];
}

export function validateProducer(p: BatchProducerInfo | undefined): void {
  if (p === undefined) return;
  if (p === null || typeof p !== 'object') throw invalid('producer info must be an object');
  if (!Number.isSafeInteger(p.producerId) || p.producerId < -1)
    throw invalid(`producerId ${p.producerId} out of range`);
  if (!Number.isInteger(p.producerEpoch) || p.producerEpoch < -1 || p.producerEpoch > 0x7fff)
    throw invalid(`producerEpoch ${p.producerEpoch} out of range (int16)`);
  if (!Number.isInteger(p.baseSequence) || p.baseSequence < -1 || p.baseSequence > 0x7fffffff)
    throw invalid(`baseSequence ${p.baseSequence} out of range (int32)`);
}

function positiveInt(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max)
    throw invalid(`${what} must be an integer in [1, ${max}], got ${String(value)}`);
  return value;
}

function fsyncPolicy(value: unknown): void {
  if (typeof value !== 'string' || !FSYNC_POLICIES.has(value))
    throw invalid(`fsync must be 'always', 'interval' or 'never', got ${String(value)}`);
}

/** Defaults from LIMITS, so callers may pass only what they change. */
export function resolveLogOptions(options: Partial<LogOptions> | undefined): LogOptions {
  const o: LogOptions = {
    fsync: 'always',
    fsyncIntervalMs: LIMITS.fsyncIntervalMs,
    segmentBytes: LIMITS.segmentBytes,
    segmentMs: LIMITS.segmentMs,
    indexIntervalBytes: LIMITS.indexIntervalBytes,
    ...stripUndefined(options ?? {}),
  };
  fsyncPolicy(o.fsync);
  positiveInt(o.fsyncIntervalMs, 'fsyncIntervalMs');
  positiveInt(o.segmentBytes, 'segmentBytes', MAX_SEGMENT_BYTES);
  positiveInt(o.segmentMs, 'segmentMs');
  positiveInt(o.indexIntervalBytes, 'indexIntervalBytes', MAX_SEGMENT_BYTES);
  if (o.retentionMs !== undefined) positiveInt(o.retentionMs, 'retentionMs');
  if (o.retentionBytes !== undefined) positiveInt(o.retentionBytes, 'retentionBytes');
  return o;
}

export function resolveJournalOptions(options: Partial<JournalOptions> | undefined): JournalOptions {
  const o: JournalOptions = {
    fsync: 'always',
    fsyncIntervalMs: LIMITS.fsyncIntervalMs,
    ...stripUndefined(options ?? {}),
  };
  fsyncPolicy(o.fsync);
  positiveInt(o.fsyncIntervalMs, 'fsyncIntervalMs');
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
