// Queue-specific reading and rewriting of stored records: FIFO group, expiry, the delay log's due
// time, dead-letter headers. Message fields themselves are encoded by ../message-codec.ts.
import type { LogRecord, RecordHeader, RecordInput } from '../../storage/index.js';
import { H_GROUP_ID, H_PRIORITY, H_PRODUCER_ID, H_SEQUENCE, H_TTL_MS, utf8 } from '../message-codec.js';

/** Delay log only: when the message becomes visible (ms since the epoch). */
export const H_DUE_MS = 'wharf.q.dueMs';

/**
 * When a redrive enqueued the message again (ms since the epoch): its retention counts from here,
 * while the record's timestamp (the message's `timestamp`) stays its first publish.
 */
export const H_ENQUEUED_MS = 'wharf.q.enqueuedMs';

/** Dead-letter headers (user-visible, so consumers of a DLQ can read why). */
export const DLQ_HEADERS = {
  reason: 'x-dead-letter-reason',
  error: 'x-dead-letter-error',
  deliveryCount: 'x-delivery-count',
  sourceQueue: 'x-source-queue',
  firstDeliveredAt: 'x-first-delivered-at',
  lastDeliveredAt: 'x-last-delivered-at',
  deadLetteredAt: 'x-dead-lettered-at',
} as const;

export type DeadLetterReason = 'max-deliveries' | 'rejected' | 'expired' | 'overflow';

function header(rec: { headers: RecordHeader[] }, key: string): string | undefined {
  for (const h of rec.headers) if (h.key === key) return utf8(h.value);
  return undefined;
}

export function recordGroupId(rec: LogRecord): string {
  return header(rec, H_GROUP_ID) ?? '';
}

export function recordPriority(rec: { headers: RecordHeader[] }): number {
  const p = header(rec, H_PRIORITY);
  return p === undefined ? 0 : Number(p);
}

export function recordDueMs(rec: LogRecord): number {
  return Number(header(rec, H_DUE_MS) ?? 0);
}

/**
 * When the message expires: its own ttlMs, else the queue's, counted from its enqueue: its publish,
 * or the latest redrive that brought it back (H_ENQUEUED_MS). One pass over the headers.
 */
export function recordExpiresAtMs(rec: LogRecord, queueTtlMs: number | undefined): number {
  let ttl = queueTtlMs;
  let enqueuedMs = rec.timestampMs;
  for (const h of rec.headers) {
    if (h.key === H_TTL_MS) ttl = Number(utf8(h.value));
    else if (h.key === H_ENQUEUED_MS) enqueuedMs = Number(utf8(h.value));
  }
  return ttl === undefined ? Infinity : enqueuedMs + ttl;
}

/**
 * When the message was enqueued on this queue: the latest redrive that brought it back
 * (H_ENQUEUED_MS), else its publish (the record's timestamp).
 */
export function recordEnqueuedMs(rec: LogRecord): number {
  const redriven = header(rec, H_ENQUEUED_MS);
  return redriven === undefined ? rec.timestampMs : Number(redriven);
}

/** Stored size of a record as counted against maxBytes. */
export function recordBytes(rec: RecordInput): number {
  let n = (rec.key?.length ?? 0) + (rec.value?.length ?? 0);
  for (const h of rec.headers) n += h.key.length + h.value.length;
  return n;
}

/** A copy of a record for another log, with headers filtered and added. Bytes are copied (reads may share buffers). */
export function copyRecord(
  rec: LogRecord,
  drop: (key: string) => boolean,
  add: Record<string, string> = {},
): RecordInput {
  const headers: RecordHeader[] = [];
  for (const h of rec.headers)
    if (!drop(h.key) && !(h.key in add)) headers.push({ key: h.key, value: h.value.slice() });
  for (const [k, v] of Object.entries(add)) headers.push({ key: k, value: Buffer.from(v, 'utf8') });
  return {
    key: rec.key === null ? null : rec.key.slice(),
    value: rec.value === null ? null : rec.value.slice(),
    headers,
    timestampMs: rec.timestampMs,
  };
}

export interface DeadLetterFacts {
  reason: DeadLetterReason;
  error: string | undefined;
  deliveryCount: number;
  sourceQueue: string;
  firstDeliveredAt: number;
  lastDeliveredAt: number;
  nowMs: number;
}

/** The record a dead-letter queue receives: the original plus headers saying why. ttl and producer fields are dropped. */
export function deadLetterRecord(rec: LogRecord, f: DeadLetterFacts): RecordInput {
  const add: Record<string, string> = {
    [DLQ_HEADERS.reason]: f.reason,
    [DLQ_HEADERS.deliveryCount]: String(f.deliveryCount),
    [DLQ_HEADERS.sourceQueue]: f.sourceQueue,
    [DLQ_HEADERS.deadLetteredAt]: String(f.nowMs),
  };
  if (f.error !== undefined) add[DLQ_HEADERS.error] = f.error.slice(0, 4096);
  if (f.deliveryCount > 0) {
    add[DLQ_HEADERS.firstDeliveredAt] = String(f.firstDeliveredAt);
    add[DLQ_HEADERS.lastDeliveredAt] = String(f.lastDeliveredAt);
  }
  // Producer fields belong to the publish into the source queue; kept, the dead-letter queue would
  // take them for publishes of its own (docs/architecture.md, idempotent producers).
  return copyRecord(rec, (k) => k === H_TTL_MS || k === H_DUE_MS || k === H_PRODUCER_ID || k === H_SEQUENCE, add);
}

/**
 * A dead letter on its way back (redrive): dead-letter headers removed, enqueued again at nowMs
 * (a new enqueue for its target's ttlMs; its timestamp stays its first publish).
 */
export function redriveRecord(rec: LogRecord, nowMs: number): { record: RecordInput; sourceQueue: string | undefined } {
  const sourceQueue = header(rec, DLQ_HEADERS.sourceQueue);
  const dlq = new Set<string>(Object.values(DLQ_HEADERS));
  return { record: copyRecord(rec, (k) => dlq.has(k), { [H_ENQUEUED_MS]: String(nowMs) }), sourceQueue };
}

/** A delay-log record moved to its priority log: the due header removed. */
export function undelayedRecord(rec: LogRecord): RecordInput {
  return copyRecord(rec, (k) => k === H_DUE_MS);
}

export function withDueHeader(rec: RecordInput, dueMs: number): RecordInput {
  return { ...rec, headers: [...rec.headers, { key: H_DUE_MS, value: Buffer.from(String(dueMs), 'utf8') }] };
}
