// Contract of the webhook delivery engine (HTTP push subscriptions, SNS-to-HTTP style).
import type { Consumer, ConsumeOptions, QueueInfo, QueueMessage, QueueOptions } from '../queue-types.js';
import type { HandlerOutcome } from '../queues/handler-outcome.js';

/** What the dispatcher needs from the broker: the queue manager's public operations. */
export interface WebhookQueueHost {
  createQueue(name: string, options?: QueueOptions): Promise<QueueInfo>;
  describeQueue(name: string): Promise<QueueInfo>;
  deleteQueue(name: string): Promise<void>;
  /** The handler's HandlerOutcome may report a delivery unsent: it goes back to the queue uncounted. */
  consume(
    queue: string,
    options: ConsumeOptions,
    handler: (message: QueueMessage) => Promise<void> | HandlerOutcome | void,
  ): Promise<Consumer>;
}

export interface WebhookEndpointOptions {
  /** http(s) URL receiving one POST per message. */
  url: string;
  /** HMAC-SHA256 key for x-wharf-signature. */
  secret: string;
  /** POSTs in flight to this endpoint at once (default 4). */
  concurrency?: number;
  /** Most POSTs per second (token bucket; default unlimited). */
  ratePerSecond?: number;
  /** Bucket size: POSTs allowed back to back (default max(1, ratePerSecond)). */
  burst?: number;
  /** A POST not answered within this is a failure (default 10 000 ms). */
  timeoutMs?: number;
  /** Attempts before the message is dead-lettered (default 10). Fixed when the endpoint is first created. */
  maxDeliveries?: number;
  /** Existing queue for messages that exhausted their attempts; default a reserved `<target>.dlq`. */
  deadLetterQueue?: string;
  /** Exponential backoff between attempts (defaults 1 s doubling to 5 min, jitter 0.2). */
  initialRetryDelayMs?: number;
  maxRetryDelayMs?: number;
}

export interface WebhookEndpointStats {
  url: string;
  delivered: number;
  failed: number;
  inFlight: number;
  lastStatus: number | null;
  lastError: string | null;
}
