// Transactions (exactly-once building block): broker.transaction(async (tx) => { ... }) collects
// acks, publishes and offset commits while the callback runs and writes nothing; when it resolves,
// everything is validated and admitted, then applied through the intent journal (all or none, also
// across a crash). A callback that throws leaves no trace. Because outputs are only written at
// commit, a reader can never observe an uncommitted output: read_committed holds without Kafka's
// control records and LSO (see docs/exchanges.md).
import { EXCHANGE_LIMITS, WharfError, validateName } from '../../common/index.js';
import type { LeasedMessageRef, OffsetCommit, Transaction, Wharf_Transactions } from '../exchange-types.js';
import { newMessageId } from '../message-codec.js';
import { ProducerDedupe } from '../idempotence.js';
import type { MemberGrant, MessageInput, PublishResult, TopicMessage } from '../types.js';
import type { BrokerHost, FencedOffsetCommit } from './broker-host.js';
import type { ExchangeManager } from './exchange-manager.js';
import type { IntentJournal, IntentOp, WriteOp } from './intent-journal.js';

/** Most operations (acks + messages + offset commits) in one transaction. */
export const MAX_TRANSACTION_OPS = EXCHANGE_LIMITS.maxTransactionOps;

/**
 * What a transaction's callback did, held until it resolves. The remote client collects with it too
 * and sends what it holds as one TRANSACTION request, so both check the same things at the same point.
 */
export class CollectingTransaction implements Transaction {
  readonly acks = new Map<string, LeasedMessageRef>();
  readonly publishes: Array<{ name: string; messages: MessageInput[] }> = [];
  readonly offsets = new Map<string, OffsetCommit>();
  private ops = 0;
  sealed = false;

  /** Nothing collected: committing it would change nothing (an empty publish still checks that its target exists). */
  get isEmpty(): boolean {
    return this.ops === 0 && this.publishes.length === 0;
  }

  async ack(message: LeasedMessageRef): Promise<void> {
    this.take(1);
    if (
      message === null ||
      typeof message !== 'object' ||
      typeof message.queue !== 'string' ||
      typeof message.id !== 'string' ||
      typeof message.receipt !== 'string'
    ) {
      throw new WharfError('INVALID_ARGUMENT', 'tx.ack takes a QueueMessage from receive() or consume()');
    }
    // By receipt: the id only names the message in errors (two deliveries can share an id).
    this.acks.set(`${message.queue}\u0000${message.receipt}`, {
      queue: message.queue,
      id: message.id,
      receipt: message.receipt,
    });
  }

  publish(name: string, message: MessageInput): Promise<void>;
  publish(name: string, messages: MessageInput[]): Promise<void>;
  async publish(name: string, input: MessageInput | MessageInput[]): Promise<void> {
    const messages = Array.isArray(input) ? input : [input];
    this.take(messages.length);
    validateName(name, 'publish target');
    this.publishes.push({ name, messages: messages.map((m) => ({ ...m })) });
  }

  commitOffset(commit: OffsetCommit): Promise<void>;
  commitOffset(message: TopicMessage): Promise<void>;
  async commitOffset(input: OffsetCommit | TopicMessage): Promise<void> {
    this.take(1);
    if (input === null || typeof input !== 'object')
      throw new WharfError(
        'INVALID_ARGUMENT',
        'tx.commitOffset takes a delivered topic message or { topic, group, partition, offset, grant? }',
      );
    const commit = isDelivered(input) ? commitOfMessage(input) : input;
    const { topic, group, partition, offset, grant } = commit;
    validateName(topic, 'topic name');
    validateName(group, 'group name');
    if (!Number.isSafeInteger(partition) || partition < 0)
      throw new WharfError('INVALID_ARGUMENT', `partition ${String(partition)} must be a non-negative integer`);
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new WharfError('INVALID_ARGUMENT', `offset ${String(offset)} must be a non-negative integer`);
    const collected: OffsetCommit = { topic, group, partition, offset };
    if (grant !== undefined) collected.grant = checkGrant(grant);
    this.offsets.set(`${topic}\u0000${group}\u0000${partition}`, collected);
  }

  private take(n: number): void {
    if (this.sealed)
      throw new WharfError(
        'INVALID_ARGUMENT',
        'this transaction has already finished; use tx only inside its callback',
      );
    this.ops += n;
    if (this.ops > MAX_TRANSACTION_OPS) {
      throw new WharfError(
        'LIMIT_EXCEEDED',
        `a transaction holds at most ${MAX_TRANSACTION_OPS} operations (MAX_TRANSACTION_OPS); split the work`,
      );
    }
  }
}

/**
 * A delivered topic message rather than an OffsetCommit: it has a delivery count and no group of its
 * own (a group member's message names its group in its grant).
 */
function isDelivered(input: OffsetCommit | TopicMessage): input is TopicMessage {
  return 'deliveryCount' in input && !('group' in input);
}

/** tx.commitOffset(message): the offset after it, fenced by the grant it was delivered under. */
function commitOfMessage(m: TopicMessage): OffsetCommit {
  const g = m.grant;
  if (g === undefined || g === null || typeof g !== 'object')
    throw new WharfError(
      'INVALID_ARGUMENT',
      `message ${String(m.id)} carries no grant to commit under: it was delivered to a reader without a consumer group (or by a server older than protocol version 8, which sends none); subscribe with { group }, or commit { topic, group, partition, offset } unfenced`,
    );
  if (typeof m.offset !== 'number')
    throw new WharfError('INVALID_ARGUMENT', `message ${String(m.id)} has no offset; pass a message as delivered`);
  return {
    topic: m.topic,
    group: g.group,
    partition: m.partition,
    offset: m.offset + 1,
    grant: { memberId: g.memberId, assignmentEpoch: g.assignmentEpoch },
  };
}

function isFenced(commit: OffsetCommit): commit is FencedOffsetCommit {
  return commit.grant !== undefined;
}

/** A copy of a commit's grant, checked: a member id and an assignment epoch. */
function checkGrant(grant: MemberGrant): MemberGrant {
  if (
    grant === null ||
    typeof grant !== 'object' ||
    typeof grant.memberId !== 'string' ||
    grant.memberId.length === 0 ||
    !Number.isSafeInteger(grant.assignmentEpoch) ||
    grant.assignmentEpoch < 0
  ) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      'an offset commit’s grant is { memberId, assignmentEpoch } (a non-empty string and a non-negative integer), as a group message’s grant carries them',
    );
  }
  return { memberId: grant.memberId, assignmentEpoch: grant.assignmentEpoch };
}

/**
 * Runs a transaction's callback against a fresh collector, sealed once the callback has finished
 * (resolved or thrown): what to commit, and the callback's value. A callback that throws rejects
 * with its error and nothing is committed.
 */
export async function collectTransaction<T>(
  fn: (tx: Transaction) => Promise<T>,
): Promise<{ tx: CollectingTransaction; value: T }> {
  if (typeof fn !== 'function')
    throw new WharfError('INVALID_ARGUMENT', 'transaction takes an async function (tx) => { ... }');
  const tx = new CollectingTransaction();
  try {
    return { tx, value: await fn(tx) };
  } finally {
    tx.sealed = true;
  }
}

export class TransactionCoordinator implements Wharf_Transactions {
  // Receipts (receiptKey) acked by a commit still in flight. checkReceipt only sees a
  // receipt as spent once the ack is applied, so without this two transactions acking the same
  // delivery could both pass validation and both write their outputs.
  private readonly settling = new Set<string>();

  constructor(
    private readonly host: BrokerHost,
    private readonly exchanges: ExchangeManager,
    private readonly intents: IntentJournal,
    private readonly producers: ProducerDedupe,
    private readonly now: () => number,
  ) {}

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const { tx, value } = await collectTransaction(fn);
    await this.commit(tx);
    return value;
  }

  private async commit(tx: CollectingTransaction): Promise<void> {
    // 1. Validate everything; nothing is written before all of it passes.
    const receipts: string[] = [];
    for (const a of tx.acks.values()) {
      const key = receiptKey(a.queue, a.receipt);
      if (this.settling.has(key)) {
        throw new WharfError(
          'RECEIPT_INVALID',
          `the delivery of message ${a.id} from queue ${JSON.stringify(a.queue)} is being settled by another transaction; only one transaction may ack it`,
        );
      }
      this.host.checkReceipt(a.queue, a.receipt);
      receipts.push(key);
    }
    // Held from here (no await before this point) until the commit settles or fails.
    for (const r of receipts) this.settling.add(r);
    try {
      await this.apply(tx);
    } finally {
      for (const r of receipts) this.settling.delete(r);
    }
  }

  /** The rest of the commit, with the transaction's receipts held. */
  private async apply(tx: CollectingTransaction): Promise<void> {
    for (const o of tx.offsets.values()) this.host.checkOffset(o);
    const writes = new Map<string, WriteOp>();
    const counters: Array<() => void> = [];
    const claims: SequenceClaim[] = [];
    const add = (kind: 'queue' | 'topic', name: string, m: MessageInput): void => {
      const key = `${kind}:${name}`;
      let op = writes.get(key);
      if (op === undefined) writes.set(key, (op = { op: 'write', kind, name, messages: [] }));
      op.messages.push(m);
    };
    try {
      for (const p of tx.publishes) {
        const kind = this.host.kindOf(p.name);
        if (kind === null)
          throw new WharfError(
            'NOT_FOUND',
            `no topic, queue or exchange named ${JSON.stringify(p.name)}; create it first`,
          );
        if (kind === 'exchange') {
          const claim = this.claimSequences(p.name, p.messages);
          claims.push(claim);
          const plan = this.exchanges.plan(p.name, claim.fresh);
          claim.results = plan.ids.map((id, i) => ({ id, routed: plan.routed[i] }));
          // Producer fields count for the exchange, as on the plain publish path (idempotence.ts).
          const exchange = p.name;
          for (const op of plan.ops) {
            for (const m of op.messages) {
              const producerId = m.producerId === undefined ? undefined : `${exchange}\u0000${m.producerId}`;
              add(op.kind, op.name, { ...m, producerId, dedupId: m.dedupId ?? m.id });
            }
          }
          counters.push(plan.commit);
        } else {
          // Ids fixed now and used as dedupIds, so a roll-forward after a crash stores nothing twice.
          const withIds = p.messages.map((m) => (m.id === undefined ? { ...m, id: newMessageId(this.now()) } : m));
          const claim = this.claimSequences(p.name, withIds);
          claims.push(claim);
          claim.results = claim.fresh.map((m) => ({ id: m.id! }));
          for (const m of claim.fresh) add(kind, p.name, { ...m, dedupId: m.dedupId ?? m.id });
        }
      }
      // Repeats of a publish still in flight (another transaction, a plain publish) are left out of
      // this commit; it goes on only once those are stored, and fails as they do, as a plain repeat
      // would: else a repeat of a publish that then failed would commit a message stored nowhere.
      const inFlight = claims.flatMap((c) => c.repeatsInFlight);
      if (inFlight.length > 0) await Promise.all(inFlight);
      // 2. Admission of every target (e.g. QUEUE_FULL with overflow 'reject').
      for (const op of writes.values()) this.host.admit({ kind: op.kind, name: op.name }, op.messages);
      const offsetOps = [...tx.offsets.values()].map((commit) => {
        // Field by field: the grant is checked here, not stored (a roll-forward applies what was committed).
        // The commit sequence is taken with no await before the intent is written (and the holds
        // below): a commit decided after this one has a later one.
        const { topic, group, partition, offset } = commit;
        const commitSequence = this.host.nextCommitSequence();
        const op: IntentOp = { op: 'offset', topic, group, partition, offset, commitSequence };
        return { commit, op };
      });
      const ops: IntentOp[] = [
        ...writes.values(),
        ...[...tx.acks.values()].map((a): IntentOp => ({ op: 'ack', ...a })),
        ...offsetOps.map((o) => o.op),
      ];
      // 3. Durable intent, then apply (see intent-journal.ts). Fenced commits are checked again (their
      // grant, and that they pass no unsettled message of it), now that the steps above may have
      // awaited, and hold their partitions from this check until their offsets are written: a
      // rebalance meanwhile cannot grant a partition to a new owner that would start before this
      // commit (BrokerHost.holdGrant). No await between the check and the write.
      const releases: Array<() => void> = [];
      try {
        for (const { commit, op } of offsetOps) if (isFenced(commit)) releases.push(this.host.holdGrant(commit, op));
        if (ops.length > 0) await this.intents.run({ id: newMessageId(this.now()), ops });
      } finally {
        for (const release of releases) release();
      }
      for (const c of counters) c();
      for (const c of claims) c.commit();
    } catch (err) {
      for (const c of claims) c.abort(err);
      throw err;
    }
  }

  /**
   * The messages of one tx.publish that are not repeats of an idempotent producer's sequence already
   * stored or being stored (a plain publish, another transaction, or this one), as
   * ProducerDedupe.publish judges a publish outside a transaction. The fresh sequences stay claimed
   * until the commit settles, so a repeat meanwhile waits for it and is not stored twice. Claims are
   * made before any await, so two commits cannot both find a sequence new.
   */
  private claimSequences(target: string, messages: MessageInput[]): SequenceClaim {
    const claim: SequenceClaim = {
      fresh: messages,
      results: [],
      repeatsInFlight: [],
      commit: () => {},
      abort: () => {},
    };
    if (!ProducerDedupe.wants(messages)) return claim;
    ProducerDedupe.check(messages);
    claim.fresh = [];
    const stored = new Promise<PublishResult[]>((resolve, reject) => {
      claim.commit = () => resolve(claim.results);
      claim.abort = reject;
    });
    stored.catch(() => undefined); // the transaction reports its own failure
    // viaExchange false: the producer id that names an exchange is written below, for every message.
    // publish calls back synchronously (before its first await) when anything is fresh.
    const settled = this.producers.publish(
      target,
      messages,
      false,
      (fresh) => {
        claim.fresh = fresh;
        return stored;
      },
      claim.repeatsInFlight,
    );
    settled.catch(() => undefined);
    return claim;
  }
}

/** One tx.publish's fresh messages, their results once written, and how to end its claim. */
interface SequenceClaim {
  fresh: MessageInput[];
  results: PublishResult[];
  /** Results of the repeats of a publish still in flight, which this commit waits for. */
  repeatsInFlight: Array<Promise<PublishResult>>;
  commit(): void;
  abort(err: unknown): void;
}

function receiptKey(queue: string, receipt: string): string {
  return `${queue}\u0000${receipt}`;
}
