// What every broker-model manager (topics, queues, exchanges) shares: storage, time, resolved
// engine options and the one catalog of names. Built once by Broker.open.
import type { Clock } from '../common/index.js';
import type { FsyncPolicy, Storage } from '../storage/index.js';
import type { Catalog } from './catalog.js';
import type { ProducerDedupe } from './idempotence.js';
import type { MessageInput, PublishResult } from './types.js';

export interface ResolvedBrokerOptions {
  /** null for an in-memory broker. */
  dataDir: string | null;
  inMemory: boolean;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  /** Broker-wide default for the largest message; a topic or queue may set its own. */
  maxMessageBytes: number;
  /** How often retention runs over every topic. */
  retentionCheckIntervalMs: number;
}

export interface BrokerContext {
  storage: Storage;
  clock: Clock;
  options: ResolvedBrokerOptions;
  catalog: Catalog;
  /** Idempotent producers' (producerId, sequence) table; every topic and queue feeds it what it stores. */
  producers: ProducerDedupe;
}

/** Broker-level defaults that are not limits of their own (they live beside LIMITS for docs/limits.md). */
export const BROKER_DEFAULTS = {
  /** Kafka checks retention every 5 minutes; a minute keeps small deployments' disks tidier. */
  retentionCheckIntervalMs: 60_000,
  /** Bytes one fetch of a subscription reads from a partition log. */
  fetchMaxBytes: 1024 * 1024,
  /** Retry backoff for a handler that throws (doubles per attempt up to the max). */
  retryInitialDelayMs: 10,
  retryMaxDelayMs: 1_000,
  /**
   * A batch whose handlers take long (awaited one at a time) commits its settled progress at least
   * this often, not only at its end: a restart then redelivers at most about this much work.
   */
  progressCommitIntervalMs: 1_000,
} as const;

/**
 * The handler retry backoff of BROKER_DEFAULTS for an attempt (1 = the first retry): doubling,
 * capped. Topic retries and a queue consumer's pause after releases share it.
 */
export function backoffMs(attempt: number): number {
  return Math.min(
    BROKER_DEFAULTS.retryMaxDelayMs,
    BROKER_DEFAULTS.retryInitialDelayMs * 2 ** Math.min(20, attempt - 1),
  );
}

/**
 * What the Broker routes to by a name's catalog kind. TopicManager, QueueManager and ExchangeManager
 * share this shape, so publish/stats/close need no per-kind code in the facade.
 */
export interface KindManager {
  /** True for a kind that stores nothing itself and passes messages on to queues and topics (exchanges). */
  readonly routes?: boolean;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  stats(name: string): Promise<unknown>;
  close(): Promise<void>;
}
