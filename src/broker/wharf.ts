// interface Wharf: what the embedded Broker and the remote client both implement.
import type { MessageInput, PublishResult, TopicStats, Wharf_Topics } from './types.js';
import type { QueueStats, Wharf_Queues } from './queue-types.js';
import type { ExchangeStats, Wharf_Exchanges, Wharf_Transactions } from './exchange-types.js';

/** What stats(name) answers, by the kind of the name: narrow on `kind`. */
export type Stats = TopicStats | QueueStats | ExchangeStats;

export interface Wharf_Core {
  /** Publishes to a topic, queue or exchange; resolves once durable. */
  publish(name: string, message: MessageInput): Promise<PublishResult>;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  stats(name: string): Promise<Stats>;
  close(): Promise<void>;
}

export interface Wharf extends Wharf_Core, Wharf_Topics, Wharf_Queues, Wharf_Exchanges, Wharf_Transactions {}
