// The bridge from exchanges and transactions to the queue and topic managers: admission checks that
// write nothing, idempotent writes, and the apply step of every intent op (writes, acks, offset commits).
import { WharfError, assert, validateName } from '../../common/index.js';
import type { Catalog } from '../catalog.js';
import type { OffsetCommit } from '../exchange-types.js';
import { encodeMessage } from '../message-codec.js';
import type { MemberGrant, MessageInput, PublishResult, TopicInfo } from '../types.js';
import type { LeafTarget } from './binding.js';
import type { ExchangeHost } from './exchange-manager.js';
import type { IntentOp } from './intent-journal.js';
import type { NameKind } from './registry.js';

/** What the host needs from the topic manager. */
export interface TopicSide {
  describeTopic(name: string): TopicInfo;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  /** The sequence of a commit decided now and written later (OffsetStore.nextCommitSequence). */
  nextCommitSequence(): number;
  /**
   * Writes a transaction's offset under the sequence taken when it committed. replay: a roll-forward
   * at recovery, which writes nothing over a commit decided after it (OffsetStore.commitUnlessSuperseded).
   */
  commitOffset(
    topic: string,
    group: string,
    partition: number,
    offset: number,
    commitSequence: number | undefined,
    replay: boolean,
  ): Promise<void>;
  /** Whether the grant is the partition's current one in the group (the fence of a commit). */
  isCurrentGrant(topic: string, group: string, partition: number, grant: MemberGrant): boolean;
  /**
   * GroupCoordinator.holdCommit: null when the grant is not current; else the release of the hold,
   * told whether the offset was written.
   */
  holdCommit(
    topic: string,
    group: string,
    partition: number,
    grant: MemberGrant,
    offset: number,
  ): ((written: boolean) => void) | null;
  /** GroupCoordinator.lowestUnsettledOffset: null when the grant is not current or nothing is known. */
  lowestUnsettledOffset(topic: string, group: string, partition: number, grant: MemberGrant): number | null;
}

/** An offset commit fenced by the grant its input was consumed under. */
export type FencedOffsetCommit = OffsetCommit & { grant: MemberGrant };

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
  /** Holds of fenced commits (holdGrant), by the intent op that applies each: released once it is applied. */
  private readonly heldUntilApplied = new Map<IntentOp, (written: boolean) => void>();

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

  /**
   * Validates an offset commit before a transaction commits (nothing written): CONFLICT when it is
   * fenced by a grant that is no longer the partition's current one, or when it would pass a message
   * of that grant that is not settled (checkInOrder).
   */
  checkOffset(commit: OffsetCommit): void {
    const { topic, group, partition, offset } = commit;
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
    const grant = commit.grant;
    if (grant === undefined) return;
    if (!this.topics.isCurrentGrant(topic, group, partition, grant)) throw reassigned({ ...commit, grant });
    this.checkInOrder({ ...commit, grant });
  }

  /**
   * Checks a fenced commit once more (its grant, and checkInOrder) and holds its partition's next
   * grant (GroupCoordinator.holdCommit) until `op`, the intent op that writes it, has been applied,
   * or until the returned release is called (the transaction settled or failed; after the op was
   * applied it does nothing). Taken right before the intent is written: so the next owner starts from the offset
   * this transaction commits, and waits no longer than this transaction's intent and offset writes
   * (not for its other targets). Both checks see the state the intent is written in (no await).
   */
  holdGrant(commit: FencedOffsetCommit, op: IntentOp): () => void {
    this.checkInOrder(commit);
    const release = this.topics.holdCommit(commit.topic, commit.group, commit.partition, commit.grant, commit.offset);
    if (release === null) throw reassigned(commit);
    assert(!this.heldUntilApplied.has(op), 'an offset op holds its grant once');
    this.heldUntilApplied.set(op, release);
    return () => {
      this.heldUntilApplied.delete(op);
      release(false);
    };
  }

  /**
   * CONFLICT when a fenced commit would move the group's offset past a message of its grant that is
   * not settled (being handled, or waiting for a retry: maxInFlight > 1). The next owner would start
   * after that message and never get it. A commit of offset o is made by the handler of message
   * o - 1 (tx.commitOffset(m) commits m.offset + 1), itself unsettled while it runs, so only offsets
   * below o - 1 count. A commit below what the group committed is left alone, as Kafka leaves it.
   */
  private checkInOrder(c: FencedOffsetCommit): void {
    const unsettled = this.topics.lowestUnsettledOffset(c.topic, c.group, c.partition, c.grant);
    if (unsettled === null || unsettled >= c.offset - 1) return;
    throw new WharfError(
      'CONFLICT',
      `offset ${unsettled} of partition ${c.partition} of topic ${JSON.stringify(c.topic)} is still being handled by member ${JSON.stringify(c.grant.memberId)} of group ${JSON.stringify(c.group)} (in flight, or waiting for a retry), and this transaction would commit offset ${c.offset} past it; nothing of this transaction was applied. A transaction commits a partition's offsets in order: run it again once offset ${unsettled} is settled (let the handler throw, and the message is retried), or subscribe with maxInFlight 1`,
    );
  }

  checkReceipt(queue: string, receipt: string): void {
    this.queues.checkReceipt(queue, receipt);
  }

  /** The sequence a transaction's offset commit is decided under (its intent op carries it). */
  nextCommitSequence(): number {
    return this.topics.nextCommitSequence();
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

  /**
   * Applies one intent op; replays are idempotent (dedupId on writes, ack-by-id, an offset written
   * unless it or a commit decided after it was written).
   */
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
    let written = false;
    try {
      if (this.kindOf(op.topic) === 'topic') {
        await this.topics.commitOffset(op.topic, op.group, op.partition, op.offset, op.commitSequence, replay);
        written = true;
      }
    } finally {
      // Applied (or failed: a broken offset journal; the intent is then finished at the next open):
      // the partition may be granted again. Written, it counts for its grant (committedUnderGrant).
      const release = this.heldUntilApplied.get(op);
      this.heldUntilApplied.delete(op);
      release?.(written);
    }
  }
}

function reassigned(c: FencedOffsetCommit): WharfError {
  return new WharfError(
    'CONFLICT',
    `partition ${c.partition} of topic ${JSON.stringify(c.topic)} was reassigned in group ${JSON.stringify(c.group)} since member ${JSON.stringify(c.grant.memberId)} was granted it (assignment epoch ${c.grant.assignmentEpoch}); nothing of this transaction was applied. The partition's current owner reads on from the group's committed offset and processes this input: give it up rather than retry the transaction`,
  );
}
