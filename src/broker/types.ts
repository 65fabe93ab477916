// The public API contract shared by the embedded Broker and the remote client (interface Wharf).
// Names here are relied on by examples, docs and outside checks: add, never rename.
import { optionFields, type Clock, type WharfError } from '../common/index.js';
import type { FsyncPolicy, LogRecord } from '../storage/index.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** JSON, or bytes kept as bytes. */
export type Payload = JsonValue | Uint8Array;

/** What a producer hands to publish(). Only payload is commonly set; everything else is optional. */
export interface MessageInput {
  id?: string;
  type?: string;
  key?: string | null;
  headers?: Record<string, string>;
  payload?: Payload;
  /** Queues with priorities: 0 (lowest) .. priorities-1. */
  priority?: number;
  /** Queues: not visible before this many ms. */
  delayMs?: number;
  /** FIFO queues: the ordering group. */
  groupId?: string;
  /** Drops a repeat published within the target's dedup window; the repeat resolves with the original's result. */
  dedupId?: string;
  /** Exchanges: routing key; defaults to `type`. */
  routingKey?: string;
  /** Queues: dropped (or dead-lettered) when not delivered within ttlMs. */
  ttlMs?: number;
  /** Idempotent producer: a retried (producerId, sequence) to the same target is stored once. */
  producerId?: string;
  sequence?: number;
  /** Topics: explicit partition, overriding the key's partitioner. */
  partition?: number;
}

/** A stored message as consumers see it. */
export interface Message {
  id: string;
  type: string;
  /** Set by the broker at publish, ms since the epoch. */
  timestamp: number;
  key: string | null;
  headers: Record<string, string>;
  payload: Payload;
  priority?: number;
  groupId?: string;
  dedupId?: string;
  routingKey?: string;
}

export interface PublishResult {
  id: string;
  /** Topics: where it was stored. */
  partition?: number;
  offset?: number;
  /** True when dedup/idempotence recognised a repeat and returned the original's result. */
  duplicate?: boolean;
  /**
   * With `duplicate`: the repeat was of this message's (producerId, sequence), whose original was
   * stored, rather than of a `dedupId` (or content) seen before. The remote client uses it to
   * resolve a publish it re-sent after a reconnect as the one publish its caller made.
   */
  repeatedSequence?: boolean;
  /** Exchanges: how many queues/topics/endpoints it was routed to. */
  routed?: number;
  /**
   * Queues: what the queue's overflow policy did with this message instead of storing it in the
   * queue: sent it to the dead-letter queue (overflow 'dead-letter', RabbitMQ's reject-publish-dlx
   * nack) or dropped it (overflow 'drop-lowest-priority', a message below every stored one).
   */
  overflow?: 'dead-lettered' | 'dropped';
}

// ---------------------------------------------------------------- topics

export interface TopicOptions {
  partitions?: number;
  retentionMs?: number;
  retentionBytes?: number;
  segmentBytes?: number;
  segmentMs?: number;
  maxMessageBytes?: number;
  dedupWindowMs?: number;
}

/** Every TopicOptions field; createTopic refuses any other (INVALID_ARGUMENT). */
export const TOPIC_OPTION_FIELDS = optionFields<TopicOptions>({
  partitions: true,
  retentionMs: true,
  retentionBytes: true,
  segmentBytes: true,
  segmentMs: true,
  maxMessageBytes: true,
  dedupWindowMs: true,
});

export interface TopicInfo {
  name: string;
  kind: 'topic';
  partitions: number;
  retentionMs: number | null;
  retentionBytes: number | null;
  segmentBytes: number;
  segmentMs: number;
  maxMessageBytes: number;
  dedupWindowMs: number;
  createdAt: number;
}

export type StartPosition = 'earliest' | 'latest' | { offset: number } | { timestamp: number };

/** At-least-once commits after the handler resolves; 'auto' (at-most-once) commits on delivery. */
export type AckMode = 'manual' | 'auto';

export interface SubscribeOptions {
  /** Consumer group; members of one group share partitions. Without one: a private reader that commits nothing. */
  group?: string;
  /** Where a group with no committed offset starts (Kafka's auto.offset.reset). Default 'latest'. */
  from?: StartPosition;
  /**
   * A reader without a group only: where each named partition starts (partition -> offset, clamped
   * to what the partition holds), as Kafka's seek per partition; partitions not named start at
   * `from`. What the remote client sends to resume a reader after a reconnect.
   */
  startOffsets?: Record<number, number>;
  ackMode?: AckMode;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Most messages in flight to the handler per partition. */
  maxInFlight?: number;
  /** Problems the subscription cannot hand to the handler (e.g. CORRUPT_DATA reading the log); it keeps retrying. */
  onError?: (error: WharfError) => void;
}

/** Every SubscribeOptions field; subscribe refuses any other (INVALID_ARGUMENT). */
export const SUBSCRIBE_OPTION_FIELDS = optionFields<SubscribeOptions>({
  group: true,
  from: true,
  ackMode: true,
  sessionTimeoutMs: true,
  heartbeatIntervalMs: true,
  maxInFlight: true,
  startOffsets: true,
  onError: true,
});

/**
 * One grant of a partition to a consumer group member: the member, and the grant's assignment epoch
 * (bumped by every grant of the partition, Kafka's generation per partition). A commit made under
 * a grant applies only while that grant is the partition's current one.
 */
export interface MemberGrant {
  readonly memberId: string;
  readonly assignmentEpoch: number;
}

/** The grant a group member's message was delivered under: what tx.commitOffset(message) is fenced by. */
export interface DeliveryGrant extends MemberGrant {
  readonly group: string;
}

export interface TopicMessage extends Message {
  topic: string;
  partition: number;
  offset: number;
  deliveryCount: number;
  /** The grant of a consumer group subscription this message was delivered under; undefined for a reader without a group. */
  grant?: DeliveryGrant;
}

/**
 * Resolving handles the message (its offset is committed); throwing fails it (retried, counted in
 * errorRate); throwing a WharfError RELEASED turns it away unhandled, for a reader that is leaving
 * (not counted, not committed: delivered again, or to the partition's next owner; docs/topics.md).
 */
export type TopicHandler = (message: TopicMessage) => Promise<void> | void;

/**
 * A topic delivery handed over as its stored record, not decoded (Broker.subscribeStored): for a
 * server that writes it to the wire as stored.
 */
export interface StoredTopicDelivery {
  readonly record: LogRecord;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly deliveryCount: number;
  /** As TopicMessage.grant. */
  readonly grant?: DeliveryGrant;
}

export type StoredTopicHandler = (delivery: StoredTopicDelivery) => Promise<void> | void;

/**
 * How many messages an auto-ack subscription's handler can take now (Broker.subscribeStored; the
 * native server passes its flow's credits). Its fetchers commit and deliver only what it admits, so
 * a message the handler could not take yet is never committed past: when the subscription closes it
 * is still there for the group's next owner. Each admitted message reaches the handler, unless its
 * fetcher is aborted first, which gives the rest back.
 */
export interface DeliveryGate {
  /** Takes room for up to `max` messages and says how many it took (0: none now). */
  admit(max: number): number;
  /** Gives back room admitted that no delivery used. */
  release(count: number): void;
  /** waiter.wake() is called once admit may take more; a waiter woken otherwise removes itself. */
  addWaiter(waiter: { wake(): void }): void;
  removeWaiter(waiter: { wake(): void }): void;
}

export interface Subscription {
  readonly topic: string;
  readonly group: string | null;
  readonly memberId: string;
  /** Partitions this member owns now. */
  assignments(): number[];
  /** Moves every partition of the group (or of this reader) to a position and replays from there. */
  seek(position: StartPosition): Promise<void>;
  close(): Promise<void>;
  /**
   * Settles once the subscription has stopped, and never rejects: null when it was closed (its own
   * close() or its broker's or client's), or the WharfError that stopped it on its own: NOT_FOUND
   * when its topic was deleted (remote: also when a resubscribe after a reconnect finds no topic).
   */
  readonly ended: Promise<WharfError | null>;
}

export interface PartitionStats {
  partition: number;
  startOffset: number;
  endOffset: number;
  bytes: number;
}

export interface GroupStats {
  lag: number;
  members: number;
  partitions: Array<{ partition: number; committed: number; lag: number; owner: string | null }>;
}

export interface TopicStats {
  kind: 'topic';
  name: string;
  partitions: PartitionStats[];
  groups: Record<string, GroupStats>;
  messages: number;
  bytes: number;
  publishRate: number;
  deliverRate: number;
  errorRate: number;
}

export interface Wharf_Topics {
  createTopic(name: string, options?: TopicOptions): Promise<TopicInfo>;
  deleteTopic(name: string): Promise<void>;
  listTopics(): Promise<TopicInfo[]>;
  describeTopic(name: string): Promise<TopicInfo>;
  subscribe(topic: string, options: SubscribeOptions, handler: TopicHandler): Promise<Subscription>;
}

/** Engine options for an embedded broker. */
export interface BrokerOptions {
  /** Directory holding all data. Required unless inMemory. */
  dataDir?: string;
  /** Ephemeral: nothing touches the disk. */
  inMemory?: boolean;
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
  maxMessageBytes?: number;
  /** How often topic retention runs (it also runs on demand: broker.applyRetention()). Default 60 s. */
  retentionCheckIntervalMs?: number;
  /** Time source for sessions, retention, rates and retries; tests pass a ManualClock. */
  clock?: Clock;
}

/** Every BrokerOptions field; Broker.open refuses any other (INVALID_ARGUMENT). */
export const BROKER_OPTION_FIELDS = optionFields<BrokerOptions>({
  dataDir: true,
  inMemory: true,
  fsync: true,
  fsyncIntervalMs: true,
  maxMessageBytes: true,
  retentionCheckIntervalMs: true,
  clock: true,
});
