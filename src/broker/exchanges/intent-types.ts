// The shapes of exchange intents (what a routed publish or a transaction will write, ack and commit),
// shared by the journal that makes them durable, the entry codec and the round that applies them.
import type { MessageInput, PublishResult } from '../types.js';

export type IntentOp =
  | { op: 'write'; kind: 'queue' | 'topic'; name: string; messages: MessageInput[] }
  | { op: 'ack'; queue: string; id: string; receipt: string }
  | {
      op: 'offset';
      topic: string;
      group: string;
      partition: number;
      offset: number;
      /**
       * Taken when the transaction committed (OffsetStore.nextCommitSequence): a roll-forward writes
       * the offset only if no commit of the partition decided after it was written. Absent in intents
       * of an older broker (written as they are).
       */
      commitSequence?: number;
    };

export type WriteOp = Extract<IntentOp, { op: 'write' }>;

export interface Intent {
  id: string;
  ops: IntentOp[];
}

/**
 * Applies one op; replay=true during recovery (the op may already be applied). A write resolves with
 * its target's result per message, in order (an applier that keeps none may resolve with nothing).
 */
export type IntentApplier = (op: IntentOp, replay: boolean) => Promise<PublishResult[] | void>;

/**
 * What an applied intent's targets said, per op in the intent's order: for a write, the result of
 * each of its messages (a duplicate names the original's id); null for an ack or offset op, or when
 * the applier resolved with nothing.
 */
export type IntentResults = Array<PublishResult[] | null>;
