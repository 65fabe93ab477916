// Kafka-model topics: create/delete/describe, publish (validate the whole batch, pick partitions,
// one append per partition), subscribe (group coordinators, private readers), retention and stats.
import { LIMITS, WharfError, assert } from '../../common/index.js';
import type { LogOptions, RecordInput } from '../../storage/index.js';
import type { BrokerContext, KindManager } from '../context.js';
import { RECOVERY_WINDOW_MS } from '../idempotence.js';
import { encodeMessage } from '../message-codec.js';
import type {
  DeliveryGate,
  MemberGrant,
  MessageInput,
  PublishResult,
  SubscribeOptions,
  TopicHandler,
  TopicInfo,
  TopicOptions,
  TopicStats,
} from '../types.js';
import { GroupCoordinator } from './group-coordinator.js';
import { TopicDedupIndex, scanLogSince } from './dedup-index.js';
import { OffsetStore } from './offset-store.js';
import { partitionForKey } from './partitioner.js';
import { resolveSubscribeOptions, TopicSubscription } from './subscription.js';
import { Topic, TopicPartition, resolveTopicConfig } from './topic.js';
import type { TopicConfig } from './topic.js';
import { buildTopicStats } from './topic-stats.js';

const topicPath = (name: string): string[] => ['topics', name];

export class TopicManager implements KindManager {
  private readonly topics = new Map<string, Topic>();
  /** for exchanges: per-topic dedupId windows (topics with dedupWindowMs > 0). */
  private readonly dedup = new Map<string, TopicDedupIndex>();
  private closed = false;

  private constructor(
    private readonly ctx: BrokerContext,
    private readonly offsets: OffsetStore,
  ) {}

  static async open(ctx: BrokerContext): Promise<TopicManager> {
    const offsets = await OffsetStore.open(ctx.storage, {
      fsync: ctx.options.fsync,
      fsyncIntervalMs: ctx.options.fsyncIntervalMs,
    });
    const manager = new TopicManager(ctx, offsets);
    for (const entry of ctx.catalog.list('topic')) {
      const topic = await manager.openTopic(entry.name, entry.config as unknown as TopicConfig, entry.createdAt);
      manager.topics.set(entry.name, topic);
    }
    return manager;
  }

  async createTopic(name: string, options?: TopicOptions): Promise<TopicInfo> {
    this.ensureOpen();
    const config = resolveTopicConfig(options, this.ctx.options.maxMessageBytes);
    const catalog = this.ctx.catalog;
    catalog.reserve(name, 'topic');
    let topic: Topic | null = null;
    try {
      // Files left by a create that crashed before the catalog was written belong to no one.
      await this.ctx.storage.remove(topicPath(name));
      topic = await this.openTopic(name, config, this.ctx.clock.now());
      await catalog.commit({ name, kind: 'topic', config: { ...config }, createdAt: topic.createdAt });
    } catch (err) {
      catalog.release(name);
      if (topic !== null) await Promise.allSettled(topic.partitions.map((p) => p.log.close()));
      throw err;
    }
    this.topics.set(name, topic);
    return topic.info();
  }

  async deleteTopic(name: string): Promise<void> {
    this.ensureOpen();
    this.ctx.catalog.require(name, 'topic');
    const topic = this.require(name);
    topic.deleted = true;
    this.topics.delete(name);
    this.dedup.delete(name);
    await this.stopConsumers(topic, false);
    const release = await this.ctx.catalog.removeAndHold(name);
    try {
      await Promise.allSettled(topic.partitions.map((p) => p.log.close()));
      await this.ctx.storage.remove(topicPath(name));
      await this.offsets.deleteTopic(name);
    } finally {
      release();
    }
  }

  listTopics(): TopicInfo[] {
    return [...this.topics.values()]
      .map((t) => t.info())
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  describeTopic(name: string): TopicInfo {
    return this.require(name).info();
  }

  async publish(name: string, messages: MessageInput[]): Promise<PublishResult[]> {
    const topic = this.require(name);
    // for exchanges: dedupId within dedupWindowMs, restart-durable (dedup-index.ts).
    const dedup = this.dedup.get(name);
    if (dedup !== undefined && messages.some((m) => m.dedupId !== undefined)) {
      return dedup.publish(messages, this.ctx.clock.now(), (fresh) => this.publishFresh(topic, name, fresh));
    }
    return this.publishFresh(topic, name, messages);
  }

  private async publishFresh(topic: Topic, name: string, messages: MessageInput[]): Promise<PublishResult[]> {
    const n = messages.length;
    if (n > LIMITS.maxBatchMessages) {
      throw new WharfError(
        'LIMIT_EXCEEDED',
        `a batch of ${n} messages is over maxBatchMessages (${LIMITS.maxBatchMessages}); split it`,
      );
    }
    if (n === 0) return [];
    const nowMs = this.ctx.clock.now();
    const count = topic.config.partitions;
    const records: RecordInput[] = new Array(n);
    const results: PublishResult[] = new Array(n);
    const partitionOf = new Int32Array(n);
    let keyless = -1;
    let mixed = false;
    // Validate every message before anything is appended: a bad one rejects the batch untouched.
    for (let i = 0; i < n; i++) {
      const input = messages[i];
      const enc = encodeMessage(input, nowMs, topic.config.maxMessageBytes, n === 1 ? 'message' : i);
      let p: number;
      if (input.partition !== undefined) {
        p = input.partition;
        if (p >= count) {
          throw new WharfError(
            'INVALID_ARGUMENT',
            `partition ${p} does not exist in topic ${JSON.stringify(name)} (partitions 0..${count - 1}); leave partition out to use the key`,
          );
        }
      } else if (enc.record.key !== null) {
        p = partitionForKey(enc.record.key, count);
      } else {
        if (keyless < 0) keyless = topic.spreader.peek();
        p = keyless;
      }
      records[i] = enc.record;
      results[i] = { id: enc.id, partition: p, offset: -1 };
      partitionOf[i] = p;
      if (p !== partitionOf[0]) mixed = true;
    }
    // Taken once the batch passed its checks: a refused batch leaves the spreader's run as it was.
    if (keyless >= 0) {
      const taken = topic.spreader.take(n);
      assert(taken === keyless, 'take() gives the partition peek() saw');
    }
    if (!mixed) {
      const baseOffset = await topic.partitions[partitionOf[0]].append(records);
      for (let i = 0; i < n; i++) results[i].offset = baseOffset + i;
    } else {
      await this.appendSplit(topic, records, results, partitionOf);
    }
    topic.publishMeter.mark(n);
    this.ctx.producers.learn(name, messages, results);
    return results;
  }

  /**
   * `storedRecords`: the handler gets StoredTopicMessages, records not decoded; `gate`: what an
   * auto-ack subscription may commit and deliver (both Broker.subscribeStored).
   */
  async subscribe(
    name: string,
    options: SubscribeOptions,
    handler: TopicHandler,
    storedRecords = false,
    gate: DeliveryGate | null = null,
  ): Promise<TopicSubscription> {
    const topic = this.require(name);
    const opts = resolveSubscribeOptions(options, name, topic.config.partitions);
    if (typeof handler !== 'function')
      throw new WharfError('INVALID_ARGUMENT', 'subscribe needs a handler function (message) => void | Promise<void>');
    // A stored record always reaches the handler (it is not decoded, so none fails to): each of the
    // gate's admissions is used by a handler call, or given back by an aborted fetcher.
    assert(
      gate === null || (storedRecords && opts.ackMode === 'auto'),
      'a delivery gate serves stored-records auto-ack subscriptions',
    );
    let coordinator: GroupCoordinator | null = null;
    if (opts.group !== null) {
      coordinator = topic.coordinators.get(opts.group) ?? null;
      if (coordinator === null) {
        coordinator = new GroupCoordinator(name, opts.group, topic.config.partitions, this.ctx.clock, this.offsets);
        topic.coordinators.set(opts.group, coordinator);
      }
    }
    const sub = new TopicSubscription(
      topic,
      opts,
      handler,
      coordinator,
      this.ctx.clock,
      this.ctx.storage.kind,
      storedRecords,
      gate,
    );
    await sub.open();
    return sub;
  }

  // for exchanges: tx.commitOffset lands here (durable; read by the group's next assignment), under
  // the sequence its transaction took (nextCommitSequence). A roll-forward at recovery (replay) writes
  // nothing over a commit decided after it, so it never moves the group's offset back.
  async commitOffset(
    topic: string,
    group: string,
    partition: number,
    offset: number,
    commitSequence: number | undefined,
    replay: boolean,
  ): Promise<void> {
    const t = this.require(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.config.partitions) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `partition ${partition} does not exist in topic ${JSON.stringify(topic)}`,
      );
    }
    if (replay && commitSequence !== undefined)
      await this.offsets.commitUnlessSuperseded(topic, group, partition, offset, commitSequence);
    else await this.offsets.commit(topic, group, partition, offset, commitSequence);
  }

  // for exchanges: the sequence of a transaction's offset commit, taken when it commits.
  nextCommitSequence(): number {
    return this.offsets.nextCommitSequence();
  }

  // for exchanges: the fence of a transaction's commit under a grant (GroupCoordinator.holdCommit).
  // A group with no coordinator has had no member since the broker opened: no grant of it is current.
  isCurrentGrant(topic: string, group: string, partition: number, grant: MemberGrant): boolean {
    const c = this.topics.get(topic)?.coordinators.get(group);
    return c !== undefined && c.isCurrentGrant(grant.memberId, partition, grant.assignmentEpoch);
  }

  holdCommit(
    topic: string,
    group: string,
    partition: number,
    grant: MemberGrant,
    offset: number,
  ): ((written: boolean) => void) | null {
    const c = this.topics.get(topic)?.coordinators.get(group);
    return c === undefined ? null : c.holdCommit(grant.memberId, partition, grant.assignmentEpoch, offset);
  }

  lowestUnsettledOffset(topic: string, group: string, partition: number, grant: MemberGrant): number | null {
    const c = this.topics.get(topic)?.coordinators.get(group);
    return c === undefined ? null : c.lowestUnsettledOffset(grant.memberId, partition, grant.assignmentEpoch);
  }

  async stats(name: string): Promise<TopicStats> {
    return buildTopicStats(this.require(name), this.offsets);
  }

  /** Deletes segments past retention in every topic (or one); returns how many were deleted. */
  async applyRetention(name?: string): Promise<number> {
    const nowMs = this.ctx.clock.now();
    const topics = name === undefined ? [...this.topics.values()] : [this.require(name)];
    let deleted = 0;
    for (const t of topics) {
      if (t.config.retentionMs === null && t.config.retentionBytes === null) continue;
      for (const p of t.partitions) deleted += await p.log.applyRetention(nowMs);
    }
    return deleted;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const topic of this.topics.values()) await this.stopConsumers(topic, true);
    await Promise.allSettled([...this.topics.values()].flatMap((t) => t.partitions.map((p) => p.log.close())));
    this.topics.clear();
    await this.offsets.close();
  }

  // ------------------------------------------------------------------ internals

  private require(name: string): Topic {
    const topic = this.topics.get(name);
    if (topic === undefined) {
      this.ctx.catalog.require(name, 'topic'); // says what the name is, when it is something else
      throw new WharfError('NOT_FOUND', `no topic named ${JSON.stringify(name)}; create it first`);
    }
    return topic;
  }

  private ensureOpen(): void {
    if (this.closed) throw new WharfError('CLOSED', 'the broker is closed; open it again');
  }

  private logOptions(config: TopicConfig): LogOptions {
    const o = this.ctx.options;
    const opts: LogOptions = {
      fsync: o.fsync,
      fsyncIntervalMs: o.fsyncIntervalMs,
      segmentBytes: config.segmentBytes,
      segmentMs: config.segmentMs,
      indexIntervalBytes: LIMITS.indexIntervalBytes,
    };
    if (config.retentionMs !== null) opts.retentionMs = config.retentionMs;
    if (config.retentionBytes !== null) opts.retentionBytes = config.retentionBytes;
    return opts;
  }

  private async openTopic(name: string, config: TopicConfig, createdAt: number): Promise<Topic> {
    const opts = this.logOptions(config);
    const opened = await Promise.allSettled(
      Array.from({ length: config.partitions }, (_, p) =>
        this.ctx.storage.openLog([...topicPath(name), String(p)], opts),
      ),
    );
    const failed = opened.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      await Promise.allSettled(opened.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
      throw (failed as PromiseRejectedResult).reason;
    }
    const parts = opened.map(
      (r, p) => new TopicPartition(p, (r as PromiseFulfilledResult<TopicPartition['log']>).value),
    );
    const dedup = config.dedupWindowMs > 0 ? new TopicDedupIndex(config.dedupWindowMs) : null;
    await this.rebuild(name, parts, dedup);
    if (dedup !== null) this.dedup.set(name, dedup);
    return new Topic(name, config, createdAt, parts, this.ctx.clock);
  }

  /**
   * Re-learns, in one read of each partition's recent tail, the dedupId window and the idempotent
   * producers' (producerId, sequence) of the last RECOVERY_WINDOW_MS (see ../idempotence.ts).
   */
  private async rebuild(name: string, parts: TopicPartition[], dedup: TopicDedupIndex | null): Promise<void> {
    const nowMs = this.ctx.clock.now();
    const fromMs = Math.min(nowMs - RECOVERY_WINDOW_MS, dedup?.since(nowMs) ?? Infinity);
    const producers = this.ctx.producers;
    for (const part of parts) {
      await scanLogSince(part.log, fromMs, (rec) => {
        dedup?.observe(rec, part.index, nowMs);
        if (rec.timestampMs >= nowMs - RECOVERY_WINDOW_MS) producers.rememberRecord(name, rec, part.index);
      });
    }
    dedup?.endRebuild();
  }

  /** A batch spanning partitions: one append per partition, in message order within each. */
  private async appendSplit(
    topic: Topic,
    records: RecordInput[],
    results: PublishResult[],
    partitionOf: Int32Array,
  ): Promise<void> {
    const byPartition = new Map<number, number[]>();
    for (let i = 0; i < partitionOf.length; i++) {
      let idx = byPartition.get(partitionOf[i]);
      if (idx === undefined) byPartition.set(partitionOf[i], (idx = []));
      idx.push(i);
    }
    await Promise.all(
      [...byPartition].map(async ([p, idx]) => {
        const baseOffset = await topic.partitions[p].append(idx.map((i) => records[i]));
        for (let k = 0; k < idx.length; k++) results[idx[k]].offset = baseOffset + k;
      }),
    );
  }

  /** graceful: settle and commit in-flight messages (broker close); otherwise stop at once (topic deleted). */
  private async stopConsumers(topic: Topic, graceful: boolean): Promise<void> {
    if (graceful) await Promise.allSettled([...topic.coordinators.values()].map((c) => c.close()));
    const reason = graceful ? null : new WharfError('NOT_FOUND', `topic ${JSON.stringify(topic.name)} was deleted`);
    await Promise.allSettled([...topic.subscribers].map((s) => s.closeForDelete(reason)));
    if (!graceful) await Promise.allSettled([...topic.coordinators.values()].map((c) => c.close()));
    topic.coordinators.clear();
  }
}
