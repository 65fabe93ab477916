// Retry backoff for nacked messages: exponential with jitter, capped (the AWS "full jitter" family).
import type { RetryPolicy } from '../queue-types.js';

export const DEFAULT_RETRY: Required<RetryPolicy> = {
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 0.2,
};

/** Delay before redelivery after the deliveryCount-th failed delivery (1-based). random() in [0, 1). */
export function retryDelayMs(
  policy: Required<RetryPolicy>,
  deliveryCount: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, deliveryCount - 1);
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * Math.pow(policy.multiplier, exponent));
  // jitter j removes up to j*base at random, so retries from many consumers spread out.
  return Math.max(0, Math.round(base * (1 - policy.jitter * random())));
}
