// The ranges of a receive's max, waitMs and visibilityTimeoutMs, and of a consumer's concurrency
// and prefetch, checked where they are given: by the queue manager and consumer embedded, and by the
// remote client before it encodes them (as u32 fields, or as the credits it asks for).
import { LIMITS, WharfError } from '../../common/index.js';
import type { ConsumeOptions, ReceiveOptions } from '../queue-types.js';

export interface ReceiveLimits {
  max: number;
  waitMs: number;
  /** undefined: the queue's own visibilityTimeoutMs (always in range). */
  visibilityTimeoutMs: number | undefined;
}

/** Throws INVALID_ARGUMENT naming the first option out of range; returns them with their defaults. */
export function checkReceiveLimits(options: ReceiveOptions): ReceiveLimits {
  const max = options.max ?? 1;
  const waitMs = options.waitMs ?? 0;
  const leaseMs = options.visibilityTimeoutMs;
  if (!Number.isSafeInteger(max) || max < 1 || max > LIMITS.maxReceiveMessages) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `receive max ${max}: pass an integer from 1 to ${LIMITS.maxReceiveMessages} (maxReceiveMessages)`,
    );
  }
  if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > LIMITS.maxWaitMs) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `receive waitMs ${waitMs}: pass an integer from 0 to ${LIMITS.maxWaitMs} (maxWaitMs)`,
    );
  }
  if (
    leaseMs !== undefined &&
    (!Number.isSafeInteger(leaseMs) || leaseMs < 1 || leaseMs > LIMITS.maxVisibilityTimeoutMs)
  ) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `receive visibilityTimeoutMs ${leaseMs}: pass an integer from 1 to ${LIMITS.maxVisibilityTimeoutMs} (maxVisibilityTimeoutMs)`,
    );
  }
  return { max, waitMs, visibilityTimeoutMs: leaseMs };
}

/** Throws INVALID_ARGUMENT for a concurrency or prefetch out of range; returns them with their defaults. */
export function checkConsumeLimits(options: ConsumeOptions): { concurrency: number; prefetch: number } {
  const c = options.concurrency ?? 1;
  if (!Number.isSafeInteger(c) || c < 1 || c > LIMITS.maxConsumeConcurrency)
    throw new WharfError(
      'INVALID_ARGUMENT',
      `consume concurrency ${c}: pass an integer from 1 to ${LIMITS.maxConsumeConcurrency}`,
    );
  const p = options.prefetch ?? c * 2;
  if (!Number.isSafeInteger(p) || p < c || p > LIMITS.maxConsumePrefetch)
    throw new WharfError(
      'INVALID_ARGUMENT',
      `consume prefetch ${p}: pass an integer from concurrency (${c}) to ${LIMITS.maxConsumePrefetch}`,
    );
  return { concurrency: c, prefetch: p };
}
