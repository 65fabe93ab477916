// The bridge from exchanges and transactions to the queue and topic managers: admission checks that
// write nothing, idempotent writes, and the apply step of every intent op (writes, acks, offset commits).
import { WharfError, validateName } from '../../common/index.js';
import type { Catalog } from '../catalog.js';
import { encodeMessage } from '../message-codec.js';
import type { MessageInput, PublishResult, TopicInfo } from '../types.js';
import type { LeafTarget } from './binding.js';
import type { ExchangeHost } from './exchange-manager.js';
import type { IntentOp } from './intent-journal.js';
import type { NameKind } from './registry.js';

/** What the host needs from the topic manager. */
export interface TopicSide {
  describeTopic(name: string): TopicInfo;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  commitOffset(topic: string, group: string, partition: number, offset: number): Promise<void>;
}

/** What the host needs from the queue manager. */
export interface QueueSide {
  /** Throws what publish would (QUEUE_FULL, MESSAGE_TOO_LARGE, ...) without writing. */
  admit(name: string, messages: MessageInput[]): void;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  /** Throws RECEIPT_INVALID unless the receipt still holds the message's lease. */
  checkReceipt(queue: string, receipt: string): void;
  /** Settles the message at the receipt's position, lease or not (roll-forward after a restart); a no-op when already settled. */
  ackByReceiptPosition(queue: string, receipt: string): Promise<void>;
}

export class BrokerHost implements ExchangeHost {
  constructor(
    private readonly catalog: Catalog,
    private readonly topics: TopicSide,
    private readonly queues: QueueSide,
    private readonly now: () => number,
  ) {}

  kindOf(name: string): NameKind {
    return this.catalog.get(name)?.kind ?? null;
  }

  admit(target: LeafTarget, messages: MessageInput[]): void {
    if (this.kindOf(target.name) !== target.kind) {
      throw new WharfError(
        'NOT_FOUND',
        `no ${target.kind} named ${JSON.stringify(target.name)}; it was deleted or never created`,
      );
    }
    if (target.kind === 'queue') return this.queues.admit(target.name, messages);
    const info = this.topics.describeTopic(target.name);
    const nowMs = this.now();
    messages.forEach((m, i) => {
      encodeMessage(m, nowMs, info.maxMessageBytes, i);
      if (
        m.partition !== undefined &&
        (!Number.isInteger(m.partition) || m.partition < 0 || m.partition >= info.partitions)
      ) {
        throw new WharfError(
          'INVALID_ARGUMENT',
          `partition ${m.partition} does not exist in topic ${target.name} (0..${info.partitions - 1})`,
        );
      }
    });
  }

  write(target: LeafTarget, messages: MessageInput[]): Promise<PublishResult[]> {
    return target.kind === 'queue'
      ? this.queues.publish(target.name, messages)
      : this.topics.publish(target.name, messages);
  }

  /** Validates an offset commit before a transaction commits (nothing written). */
  checkOffset(topic: string, group: string, partition: number, offset: number): void {
    validateName(group, 'group name');
    const info = this.topics.describeTopic(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= info.partitions) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `partition ${partition} does not exist in topic ${topic} (0..${info.partitions - 1})`,
      );
    }
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new WharfError('INVALID_ARGUMENT', `offset ${offset} must be a non-negative integer`);
  }

  checkReceipt(queue: string, receipt: string): void {
    this.queues.checkReceipt(queue, receipt);
  }

  /**
   * Whether the writes of several intents may go to this target in one call with the same outcome as
   * one call each: topics, and queues without a per-call limit (maxLength, maxBytes, rateLimit act
   * on a whole batch: its overflow policy or token bucket would treat a merged batch as one).
   */
  mergeable(target: LeafTarget): boolean {
    const entry = this.catalog.get(target.name);
    if (entry === undefined || entry.kind !== target.kind) return false;
    if (target.kind === 'topic') return true;
    const c = entry.config as { maxLength?: number | null; maxBytes?: number | null; rateLimit?: unknown };
    return c.maxLength == null && c.maxBytes == null && c.rateLimit == null;
  }

  /** Applies one intent op; replays are idempotent (dedupId on writes, ack-by-id, set-offset). */
  async apply(op: IntentOp, replay: boolean): Promise<PublishResult[] | void> {
    if (op.op === 'write') {
      // A target deleted since the intent began has nothing left to complete.
      if (replay && this.kindOf(op.name) !== op.kind) return [];
      return this.write({ kind: op.kind, name: op.name }, op.messages);
    }
    if (op.op === 'ack') {
      if (this.kindOf(op.queue) === 'queue') await this.queues.ackByReceiptPosition(op.queue, op.receipt);
      return;
    }
    if (this.kindOf(op.topic) === 'topic') await this.topics.commitOffset(op.topic, op.group, op.partition, op.offset);
  }
}
