// What the patterns need from Wharf: only publish. An embedded Broker and the remote client both fit.
import type { MessageInput, PublishResult } from '../broker/index.js';

export interface WharfPublisher {
  publish(name: string, message: MessageInput): Promise<PublishResult>;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
}
