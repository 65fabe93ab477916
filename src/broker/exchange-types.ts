// Public contract of exchanges (RabbitMQ / SNS model) and exactly-once transactions. Part of interface Wharf.
import { optionFields } from '../common/index.js';
import type { MemberGrant, MessageInput, PublishResult, TopicMessage } from './types.js';
import type { QueueMessage } from './queue-types.js';

export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

export interface ExchangeOptions {
  type: ExchangeType;
  /** Exchange, queue or topic that receives messages matching no binding (RabbitMQ alternate-exchange). */
  alternate?: string;
}

/** Every ExchangeOptions field; createExchange refuses any other (INVALID_ARGUMENT). */
export const EXCHANGE_OPTION_FIELDS = optionFields<ExchangeOptions>({ type: true, alternate: true });

export interface ExchangeInfo {
  name: string;
  kind: 'exchange';
  type: ExchangeType;
  alternate: string | null;
  bindings: number;
  createdAt: number;
}

/** Where a binding delivers: a queue, a topic, another exchange, or an HTTP endpoint (HMAC-signed POSTs). */
export type BindingTarget =
  { queue: string } | { topic: string } | { exchange: string } | { url: string; secret: string };

/**
 * SNS-style condition on one header. A bare string matches that exact value; a number matches a
 * header whose numeric value equals it.
 */
export type FilterCondition =
  | string
  | number
  | { 'anything-but': string | number | Array<string | number> | { prefix: string } }
  | { numeric: Array<string | number> }
  | { prefix: string }
  | { suffix: string }
  | { exists: boolean };

/** header name -> conditions; a header matches when any of its conditions does; every header must match. */
export type FilterPolicy = Record<string, FilterCondition | FilterCondition[]>;

export interface BindingOptions {
  /** direct: the routing key; topic: an AMQP pattern (`*` one word, `#` zero or more). Ignored by fanout and headers. */
  pattern?: string;
  /** headers exchange: the header values to compare. */
  headers?: Record<string, string>;
  /** headers exchange: every header must match ('all', default) or at least one ('any'). */
  match?: 'all' | 'any';
  /** SNS-style filter on message headers, applied on top of the exchange's own matching. */
  filter?: FilterPolicy;
}

/** Every BindingOptions field; bind and unbind refuse any other (INVALID_ARGUMENT). */
export const BINDING_OPTION_FIELDS = optionFields<BindingOptions>({
  pattern: true,
  headers: true,
  match: true,
  filter: true,
});

export interface BindingInfo {
  /** Stable id `<exchange>.<n>`; a url binding's delivery queue is named after it. */
  id: string;
  exchange: string;
  target: BindingTarget;
  pattern?: string;
  headers?: Record<string, string>;
  match?: 'all' | 'any';
  filter?: FilterPolicy;
  createdAt: number;
}

export interface ExchangeStats {
  kind: 'exchange';
  name: string;
  type: ExchangeType;
  bindings: number;
  /** Messages published to this exchange (directly or from another exchange). */
  published: number;
  /** Deliveries into bound targets. */
  routed: number;
  /** Messages that matched no binding. */
  unroutable: number;
  /** Unroutable messages handed to the alternate. */
  alternated: number;
}

export interface Wharf_Exchanges {
  createExchange(name: string, options: ExchangeOptions): Promise<ExchangeInfo>;
  deleteExchange(name: string): Promise<void>;
  listExchanges(): Promise<ExchangeInfo[]>;
  describeExchange(name: string): Promise<ExchangeInfo>;
  bind(exchange: string, target: BindingTarget, options?: BindingOptions): Promise<BindingInfo>;
  /** Removes the binding with the same target and options (RabbitMQ unbind). NOT_FOUND when there is none. */
  unbind(exchange: string, target: BindingTarget, options?: BindingOptions): Promise<void>;
  /** Bindings of one exchange, or of all exchanges. */
  listBindings(exchange?: string): Promise<BindingInfo[]>;
}

// ---------------------------------------------------------------- transactions

export interface OffsetCommit {
  topic: string;
  group: string;
  partition: number;
  /** The next offset the group will read (Kafka convention). */
  offset: number;
  /**
   * The grant the input was consumed under (a group message's `grant`): the commit, and with it the
   * whole transaction, fails with CONFLICT unless that grant is still the partition's current one.
   * Without it the commit is administrative: it is not fenced and sets the offset whoever owns the
   * partition (as a seek would, without stopping anyone).
   */
  grant?: MemberGrant;
}

/** A leased queue message named by its queue, id and receipt: a QueueMessage is one. */
export type LeasedMessageRef = Pick<QueueMessage, 'queue' | 'id' | 'receipt'>;

/** Work collected by a transaction; applied all-or-nothing when the callback resolves. */
export interface Transaction {
  /**
   * Acks a leased queue message at commit. Takes a message from receive() or consume(), or anything
   * naming one by its queue, id and receipt.
   */
  ack(message: LeasedMessageRef): Promise<void>;
  /** Publishes to a topic, queue or exchange at commit. */
  publish(name: string, message: MessageInput): Promise<void>;
  publish(name: string, messages: MessageInput[]): Promise<void>;
  /** Commits a group's offset at commit; fenced when it names a grant (OffsetCommit.grant). */
  commitOffset(commit: OffsetCommit): Promise<void>;
  /**
   * Commits `message.offset + 1` for the message's topic, group and partition, fenced by the grant it
   * was delivered under (Kafka's sendOffsetsToTransaction with the consumer's group metadata): if
   * the partition was granted again since (to another member, or to the same one after a revoke
   * that timed out, a session expiry or a seek), the transaction fails with CONFLICT and nothing of
   * it applies; also while an earlier message of the grant is not settled (maxInFlight > 1: still
   * running, or waiting for a retry), since offsets are committed in order: throw, and the message is
   * retried. Once committed, the message is consumed: a throw from its handler afterwards is counted,
   * not retried. INVALID_ARGUMENT for a message of a reader without a group (it has no grant).
   */
  commitOffset(message: TopicMessage): Promise<void>;
}

export interface TransactionResult<T> {
  value: T;
  /** Results of the transaction's publishes, in call order. */
  published: PublishResult[];
}

export interface Wharf_Transactions {
  /** Runs fn; if it resolves, its acks, publishes and offset commits apply atomically; if it throws, none do. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
}
