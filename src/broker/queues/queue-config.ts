// Validation and defaults of QueueOptions. Every option is checked here once, so the engine can trust it.
import { LIMITS, WharfError, checkOptionFields, knownOptionFields } from '../../common/index.js';
import {
  QUEUE_OPTION_FIELDS,
  RATE_LIMIT_FIELDS,
  RETRY_POLICY_FIELDS,
  type OverflowPolicy,
  type QueueInfo,
  type QueueOptions,
  type RetryPolicy,
} from '../queue-types.js';
import { DEFAULT_RETRY } from './retry.js';

/** Queue defaults that are not broker-wide limits (listed in docs/queues.md). */
export const QUEUE_DEFAULTS = {
  visibilityTimeoutMs: 30_000,
  /** 0 = never dead-letter by count. */
  maxDeliveries: 0,
  priorities: 1,
  overflow: 'reject' as OverflowPolicy,
  blockTimeoutMs: 30_000,
  /** Tracked (leased or retry-waiting) messages per queue; receive returns fewer beyond it. */
  maxTrackedMessages: 100_000,
  /** FIFO: messages parked behind busy groups; the scan pauses beyond it. */
  maxHeldMessages: 100_000,
  /** Delayed messages indexed in memory; more are found by rescanning the delay log. */
  delayIndexCapacity: 10_000,
  /** After a failed move of due delayed messages (or rescan of the delay log), the wait before the next try. */
  delayMoveRetryMs: 1_000,
  /** The least wait before a message whose dead letter could not be written is delivered again (its retry backoff, if longer). */
  deadLetterRetryMs: 1_000,
  /** Journal size that triggers a snapshot (and segment truncation). */
  snapshotJournalBytes: 4 * 1024 * 1024,
  /** Most bytes one read of a queue's log asks for (deliveries, delay-log scans). */
  readMaxBytes: 1024 * 1024,
} as const;

export type ResolvedQueueOptions = QueueInfo['options'] & {
  retry: Required<RetryPolicy>;
  blockTimeoutMs: number;
  maxMessageBytes: number;
  onExpire: 'drop' | 'dead-letter';
};

const OVERFLOWS: OverflowPolicy[] = ['reject', 'block', 'drop-oldest', 'drop-lowest-priority', 'dead-letter'];

function bad(what: string, fix: string): WharfError {
  return new WharfError('INVALID_ARGUMENT', `queue option ${what}; ${fix}`);
}

function int(v: unknown, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw bad(`${name} is ${JSON.stringify(v)}`, `pass an integer from ${min} to ${max}`);
  return v;
}

/**
 * Validates QueueOptions (INVALID_ARGUMENT, unknown fields included) and fills defaults. `stored`:
 * options read back from the catalog, where a field unknown to this version is dropped, not refused,
 * so a data directory written before unknown fields were refused still opens.
 */
export function resolveQueueOptions(
  given: QueueOptions = {},
  brokerMaxMessageBytes: number,
  stored = false,
): ResolvedQueueOptions {
  let o = given;
  if (stored && o !== null && typeof o === 'object' && !Array.isArray(o)) {
    o = knownOptionFields(o, QUEUE_OPTION_FIELDS);
    // Stored before these were type-checked: any truthy value meant true, and still does.
    if (o.fifo !== undefined) o.fifo = Boolean(o.fifo);
    if (o.contentBasedDedup !== undefined) o.contentBasedDedup = Boolean(o.contentBasedDedup);
    if (o.rateLimit !== null && typeof o.rateLimit === 'object')
      o.rateLimit = knownOptionFields(o.rateLimit, RATE_LIMIT_FIELDS);
  }
  checkOptionFields(o, QUEUE_OPTION_FIELDS, 'queue option', '{ visibilityTimeoutMs: 30000 }');
  if (o.retry !== undefined)
    checkOptionFields(o.retry, RETRY_POLICY_FIELDS, 'queue option retry', '{ initialDelayMs: 1000 }');
  if (o.rateLimit !== undefined)
    checkOptionFields(o.rateLimit, RATE_LIMIT_FIELDS, 'queue option rateLimit', '{ messagesPerSecond: 100 }');
  const priorities = int(o.priorities, 'priorities', 1, LIMITS.maxPriorities) ?? QUEUE_DEFAULTS.priorities;
  for (const k of ['fifo', 'contentBasedDedup'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean')
      throw bad(`${k} is ${JSON.stringify(o[k])}`, 'pass true or false');
  }
  // A queue's logs are segmented like a topic's (positions in the index are 32-bit).
  // Not for stored options: 1..1023 was accepted before this bound.
  if (!stored) int(o.segmentBytes, 'segmentBytes', 1024, 2 ** 31 - 1);
  const fifo = o.fifo ?? false;
  if (fifo && priorities > 1)
    throw bad('fifo with priorities > 1', 'FIFO queues order by group, not priority: use one or the other');
  const overflow = o.overflow ?? QUEUE_DEFAULTS.overflow;
  if (!OVERFLOWS.includes(overflow))
    throw bad(`overflow is ${JSON.stringify(overflow)}`, `use one of ${OVERFLOWS.join(', ')}`);
  if (overflow === 'dead-letter' && o.deadLetterQueue === undefined)
    throw bad("overflow 'dead-letter' without deadLetterQueue", 'set deadLetterQueue');
  const onExpire = o.onExpire ?? 'drop';
  if (onExpire !== 'drop' && onExpire !== 'dead-letter')
    throw bad(`onExpire is ${JSON.stringify(onExpire)}`, "use 'drop' or 'dead-letter'");
  if (onExpire === 'dead-letter' && o.deadLetterQueue === undefined)
    throw bad("onExpire 'dead-letter' without deadLetterQueue", 'set deadLetterQueue');
  const r = o.retry ?? {};
  const retry: Required<RetryPolicy> = {
    initialDelayMs: int(r.initialDelayMs, 'retry.initialDelayMs', 0, LIMITS.maxDelayMs) ?? DEFAULT_RETRY.initialDelayMs,
    maxDelayMs: int(r.maxDelayMs, 'retry.maxDelayMs', 0, LIMITS.maxDelayMs) ?? DEFAULT_RETRY.maxDelayMs,
    multiplier: r.multiplier ?? DEFAULT_RETRY.multiplier,
    jitter: r.jitter ?? DEFAULT_RETRY.jitter,
  };
  if (!(retry.multiplier >= 1 && retry.multiplier <= 100))
    throw bad('retry.multiplier out of range', 'pass a number from 1 to 100');
  if (!(retry.jitter >= 0 && retry.jitter <= 1)) throw bad('retry.jitter out of range', 'pass a number from 0 to 1');
  const rl = o.rateLimit;
  if (rl !== undefined) {
    for (const k of ['messagesPerSecond', 'bytesPerSecond', 'burstMessages', 'burstBytes'] as const) {
      if (rl[k] !== undefined && !(typeof rl[k] === 'number' && rl[k]! > 0))
        throw bad(`rateLimit.${k} is ${JSON.stringify(rl[k])}`, 'pass a positive number');
    }
    if (rl.mode !== undefined && rl.mode !== 'delay' && rl.mode !== 'reject')
      throw bad('rateLimit.mode', "use 'delay' or 'reject'");
  }
  const out: ResolvedQueueOptions = {
    ...o,
    visibilityTimeoutMs:
      int(o.visibilityTimeoutMs, 'visibilityTimeoutMs', 1, LIMITS.maxVisibilityTimeoutMs) ??
      QUEUE_DEFAULTS.visibilityTimeoutMs,
    maxDeliveries: int(o.maxDeliveries, 'maxDeliveries', 0, LIMITS.maxDeliveries) ?? QUEUE_DEFAULTS.maxDeliveries,
    priorities,
    fifo,
    dedupWindowMs: int(o.dedupWindowMs, 'dedupWindowMs', 0, LIMITS.maxDedupWindowMs) ?? LIMITS.dedupWindowMs,
    overflow,
    retry,
    onExpire,
    blockTimeoutMs: int(o.blockTimeoutMs, 'blockTimeoutMs', 0, 3_600_000) ?? QUEUE_DEFAULTS.blockTimeoutMs,
    maxMessageBytes:
      int(o.maxMessageBytes, 'maxMessageBytes', 1, LIMITS.maxMessageBytesCeiling) ?? brokerMaxMessageBytes,
  };
  int(o.delayMs, 'delayMs', 0, LIMITS.maxDelayMs);
  int(o.ttlMs, 'ttlMs', 1, Number.MAX_SAFE_INTEGER);
  int(o.maxLength, 'maxLength', 1, Number.MAX_SAFE_INTEGER);
  int(o.maxBytes, 'maxBytes', 1, Number.MAX_SAFE_INTEGER);
  return out;
}
