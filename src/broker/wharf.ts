// interface Wharf: what the embedded Broker and the remote client both implement.
import type { MessageInput, PublishResult, TopicStats, Wharf_Topics } from './types.js';
import type { QueueStats, Wharf_Queues } from './queue-types.js';

export type Stats = TopicStats | QueueStats;

export interface Wharf_Core {
  /** Publishes to a topic, queue or exchange; resolves once durable. */
  publish(name: string, message: MessageInput): Promise<PublishResult>;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  stats(name: string): Promise<Stats>;
  close(): Promise<void>;
}

export interface Wharf extends Wharf_Core, Wharf_Topics, Wharf_Queues {}
