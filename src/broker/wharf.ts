// interface Wharf: what the embedded Broker and the remote client both implement.
import type { MessageInput, PublishResult, TopicStats, Wharf_Topics } from './types.js';
import type { QueueStats, Wharf_Queues } from './queue-types.js';
import type { Wharf_Exchanges } from './exchange-types.js';

// stats(exchangeName) returns an ExchangeStats (kind 'exchange', see exchange-types.ts); it joins this
// union once the CLI and HTTP stats views handle kind 'exchange' (requested in notes/requests.md).
export type Stats = TopicStats | QueueStats;

export interface Wharf_Core {
  /** Publishes to a topic, queue or exchange; resolves once durable. */
  publish(name: string, message: MessageInput): Promise<PublishResult>;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  stats(name: string): Promise<Stats>;
  close(): Promise<void>;
}

export interface Wharf extends Wharf_Core, Wharf_Topics, Wharf_Queues, Wharf_Exchanges {}
