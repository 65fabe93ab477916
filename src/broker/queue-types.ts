// Public contract of queues (SQS / RabbitMQ model). Part of interface Wharf.
import { optionFields, type WharfError } from '../common/index.js';
import type { Message } from './types.js';
import type { LogRecord } from '../storage/index.js';
import type { HandlerOutcome } from './queues/handler-outcome.js';

/** What happens to a publish that would exceed maxLength / maxBytes. */
export type OverflowPolicy = 'reject' | 'block' | 'drop-oldest' | 'drop-lowest-priority' | 'dead-letter';

export interface RetryPolicy {
  /** Backoff for the first retry after a nack without delayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  multiplier?: number;
  /** 0..1: fraction of the delay randomised ("full jitter" at 1). */
  jitter?: number;
}

/** Every RetryPolicy field (QueueOptions.retry); any other is refused. */
export const RETRY_POLICY_FIELDS = optionFields<RetryPolicy>({
  initialDelayMs: true,
  maxDelayMs: true,
  multiplier: true,
  jitter: true,
});

export interface QueueOptions {
  visibilityTimeoutMs?: number;
  /** Deliveries before a message is dead-lettered (or dropped when no deadLetterQueue). */
  maxDeliveries?: number;
  deadLetterQueue?: string;
  retry?: RetryPolicy;
  /** Default delay for messages that do not set delayMs. */
  delayMs?: number;
  /** Default ttl for messages that do not set ttlMs. */
  ttlMs?: number;
  /** Expired messages: dropped, or moved to the dead-letter queue. */
  onExpire?: 'drop' | 'dead-letter';
  /** Priority levels, 1..10. */
  priorities?: number;
  fifo?: boolean;
  contentBasedDedup?: boolean;
  dedupWindowMs?: number;
  maxLength?: number;
  maxBytes?: number;
  overflow?: OverflowPolicy;
  /** overflow 'block': the longest a publish waits for room. */
  blockTimeoutMs?: number;
  /** Producer token bucket. */
  rateLimit?: {
    messagesPerSecond?: number;
    bytesPerSecond?: number;
    burstMessages?: number;
    burstBytes?: number;
    mode?: 'delay' | 'reject';
  };
  maxMessageBytes?: number;
  /** Segment size of the queue's logs; settled segments are deleted whole (default 64 MiB). */
  segmentBytes?: number;
}

/** Every QueueOptions field; createQueue refuses any other (INVALID_ARGUMENT). */
export const QUEUE_OPTION_FIELDS = optionFields<QueueOptions>({
  visibilityTimeoutMs: true,
  maxDeliveries: true,
  deadLetterQueue: true,
  retry: true,
  delayMs: true,
  ttlMs: true,
  onExpire: true,
  priorities: true,
  fifo: true,
  contentBasedDedup: true,
  dedupWindowMs: true,
  maxLength: true,
  maxBytes: true,
  overflow: true,
  blockTimeoutMs: true,
  rateLimit: true,
  maxMessageBytes: true,
  segmentBytes: true,
});

/** Every QueueOptions.rateLimit field; any other is refused. */
export const RATE_LIMIT_FIELDS = optionFields<NonNullable<QueueOptions['rateLimit']>>({
  messagesPerSecond: true,
  bytesPerSecond: true,
  burstMessages: true,
  burstBytes: true,
  mode: true,
});

export interface QueueInfo {
  name: string;
  kind: 'queue';
  options: Required<
    Pick<QueueOptions, 'visibilityTimeoutMs' | 'maxDeliveries' | 'priorities' | 'fifo' | 'dedupWindowMs' | 'overflow'>
  > &
    QueueOptions;
  createdAt: number;
}

export interface ReceiveOptions {
  /** Most messages returned, 1..1000 (default 1). */
  max?: number;
  /** Long poll: wait up to this long for a first message (default 0). */
  waitMs?: number;
  /** Overrides the queue's lease for these deliveries. */
  visibilityTimeoutMs?: number;
}

/** Every ReceiveOptions field; receive refuses any other (INVALID_ARGUMENT). */
export const RECEIVE_OPTION_FIELDS = optionFields<ReceiveOptions>({
  max: true,
  waitMs: true,
  visibilityTimeoutMs: true,
});

export interface NackOptions {
  /** Visible again after this delay; default: the queue's retry backoff. */
  delayMs?: number;
  /** false: dead-letter (or drop) now instead of retrying. Default true. */
  requeue?: boolean;
  /** Recorded in dead-letter headers. */
  error?: string;
}

/** Every NackOptions field; nack refuses any other (INVALID_ARGUMENT). */
export const NACK_OPTION_FIELDS = optionFields<NackOptions>({ delayMs: true, requeue: true, error: true });

export interface QueueMessage extends Message {
  queue: string;
  deliveryCount: number;
  /** Identifies this delivery; settling with an expired receipt fails with RECEIPT_INVALID. */
  receipt: string;
  firstDeliveredAt: number;
  ack(): Promise<void>;
  nack(options?: NackOptions): Promise<void>;
  extendVisibility(ms: number): Promise<void>;
}

export interface ConsumeOptions {
  /** Handlers running at once (default 1). */
  concurrency?: number;
  /** Messages leased ahead of the handlers (default concurrency * 2). */
  prefetch?: number;
  ackMode?: 'manual' | 'auto';
  visibilityTimeoutMs?: number;
  /**
   * Problems the consumer cannot hand to the handler (a receive that failed: its queue's dead-letter
   * queue could not take an expired message, say); it keeps retrying, with a backoff.
   */
  onError?: (error: WharfError) => void;
}

/** Every ConsumeOptions field; consume refuses any other (INVALID_ARGUMENT). */
export const CONSUME_OPTION_FIELDS = optionFields<ConsumeOptions>({
  concurrency: true,
  prefetch: true,
  ackMode: true,
  visibilityTimeoutMs: true,
  onError: true,
});

/**
 * Resolving acks the message; throwing nacks it (retry backoff, counted in errorRate); throwing a
 * WharfError RELEASED hands it back unhandled, for a reader that is leaving (visible at once, its
 * delivery not counted; docs/queues.md).
 */
export type QueueHandler = (message: QueueMessage) => Promise<void> | void;

/**
 * A queue delivery handed over as its stored record, not decoded (Broker.consumeStored): for a
 * server that writes it to the wire as stored. Settles like a QueueMessage.
 */
export interface StoredQueueDelivery {
  readonly record: LogRecord;
  readonly deliveryCount: number;
  readonly receipt: string;
  /** The receipt's parts, `${receiptEpoch}:${receiptKey}:${receiptToken}`: written without reading the string. */
  readonly receiptEpoch: string;
  readonly receiptKey: number;
  readonly receiptToken: number;
  /** The record is written and no longer needed: lets it go (`record` then throws). */
  releaseRecord(): void;
  readonly firstDeliveredAt: number;
  ack(): Promise<void>;
  nack(options?: NackOptions): Promise<void>;
}

/** A HandlerOutcome returned is settled later by the caller (the native server, on the client's SETTLE). */
export type StoredQueueHandler = (delivery: StoredQueueDelivery) => Promise<void> | HandlerOutcome | void;

export interface Consumer {
  readonly queue: string;
  /** Stops taking messages, waits for running handlers, releases unstarted leases. */
  close(): Promise<void>;
  /**
   * Settles once the consumer has stopped, and never rejects: null when it was closed (its own
   * close() or its broker's or client's), or the WharfError that stopped it on its own: NOT_FOUND
   * when its queue was deleted (remote: also when a resubscribe after a reconnect finds no queue).
   */
  readonly ended: Promise<WharfError | null>;
}

export interface RedriveOptions {
  /** Target queue; default: the queue each dead letter came from. */
  to?: string;
  max?: number;
}

/** Every RedriveOptions field; redrive refuses any other (INVALID_ARGUMENT). */
export const REDRIVE_OPTION_FIELDS = optionFields<RedriveOptions>({ to: true, max: true });

export interface QueueStats {
  kind: 'queue';
  name: string;
  depth: number;
  inFlight: number;
  delayed: number;
  deadLettered: number;
  dlqDepth: number;
  /** Age of the oldest unsettled message, from its enqueue here: its publish, or the redrive that brought it back. */
  oldestAgeMs: number;
  bytes: number;
  publishRate: number;
  deliverRate: number;
  ackRate: number;
  nackRate: number;
  errorRate: number;
  expired: number;
  dropped: number;
  /**
   * Receives that failed since the broker opened, a consumer's included (its retries are otherwise
   * quiet): a dead-letter queue that cannot take an expired message, a journal or log that fails.
   */
  receiveErrors: number;
  /**
   * Messages this queue could not dead-letter since the broker opened (its dead-letter queue's
   * storage failed, or it was closed): expired ones stay, others are delivered again after a wait.
   */
  deadLetterErrors: number;
}

export interface Wharf_Queues {
  createQueue(name: string, options?: QueueOptions): Promise<QueueInfo>;
  deleteQueue(name: string): Promise<void>;
  purgeQueue(name: string): Promise<number>;
  listQueues(): Promise<QueueInfo[]>;
  describeQueue(name: string): Promise<QueueInfo>;
  receive(queue: string, options?: ReceiveOptions): Promise<QueueMessage[]>;
  consume(queue: string, options: ConsumeOptions, handler: QueueHandler): Promise<Consumer>;
  redrive(deadLetterQueue: string, options?: RedriveOptions): Promise<number>;
}
