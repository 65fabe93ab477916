// One open topic: its resolved config, its partition logs (with the durable end each fetch may read
// up to), its meters, and the live subscriptions and group coordinators on it.
import { LIMITS, WharfError, checkOptionFields, type Clock } from '../../common/index.js';
import type { AppendResult, PartitionLog, RecordInput } from '../../storage/index.js';
import { RateMeter } from '../rate-meter.js';
import { TOPIC_OPTION_FIELDS, type TopicInfo, type TopicOptions } from '../types.js';
import { KeylessSpreader } from './partitioner.js';
import type { GroupCoordinator } from './group-coordinator.js';

/** A topic's settings: what describeTopic reports, less its identity. */
export type TopicConfig = Omit<TopicInfo, 'name' | 'kind' | 'createdAt'>;

/** Smallest segment a topic may roll at; smaller only multiplies files. */
const MIN_SEGMENT_BYTES = 1024;

function positiveInt(options: TopicOptions, field: keyof TopicOptions, min: number, max: number): number | undefined {
  const v = options[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `topic option ${field} is ${JSON.stringify(v)}; use an integer from ${min} to ${max}`,
    );
  }
  return v;
}

/** Validates TopicOptions (INVALID_ARGUMENT: unknown fields, null, an array) and fills defaults; undefined = all defaults. */
export function resolveTopicConfig(options: TopicOptions | undefined, brokerMaxMessageBytes: number): TopicConfig {
  const o = options === undefined ? {} : options;
  checkOptionFields(o, TOPIC_OPTION_FIELDS, 'topic option', '{ partitions: 3 }');
  return {
    partitions: positiveInt(o, 'partitions', 1, LIMITS.maxPartitions) ?? 1,
    retentionMs: positiveInt(o, 'retentionMs', 1, Number.MAX_SAFE_INTEGER) ?? null,
    retentionBytes: positiveInt(o, 'retentionBytes', 1, Number.MAX_SAFE_INTEGER) ?? null,
    segmentBytes: positiveInt(o, 'segmentBytes', MIN_SEGMENT_BYTES, 2 ** 31 - 1) ?? LIMITS.segmentBytes,
    segmentMs: positiveInt(o, 'segmentMs', 1, Number.MAX_SAFE_INTEGER) ?? LIMITS.segmentMs,
    maxMessageBytes: positiveInt(o, 'maxMessageBytes', 1, LIMITS.maxMessageBytesCeiling) ?? brokerMaxMessageBytes,
    dedupWindowMs: positiveInt(o, 'dedupWindowMs', 0, LIMITS.maxDedupWindowMs) ?? LIMITS.dedupWindowMs,
  };
}

/** Publishes merged into one log append stop growing it past this (a single larger publish still goes alone). */
const MAX_MERGED_APPEND_BYTES = 4 * 1024 * 1024;

interface PendingAppend {
  records: RecordInput[];
  bytes: number;
  waiters: Array<{ start: number; resolve: (baseOffset: number) => void; reject: (err: unknown) => void }>;
}

/** Something waiting for a partition to grow (a fetcher at the log end). */
export interface DataWaiter {
  wake(): void;
}

export class TopicPartition {
  /** Offsets below this are durable and may be delivered; endOffset may run ahead while an fsync is pending. */
  durableEnd: number;
  private readonly waiters = new Set<DataWaiter>();
  private pending: PendingAppend | null = null;

  constructor(
    readonly index: number,
    readonly log: PartitionLog,
  ) {
    this.durableEnd = log.endOffset;
  }

  /**
   * Appends records; resolves with the offset of the first once durable. Appends made in the same
   * microtask run (e.g. many concurrent single-message publishes) share one log append, so the log
   * encodes and writes one batch for them instead of one each. Order is call order.
   */
  append(records: RecordInput[]): Promise<number> {
    let bytes = 0;
    for (let i = 0; i < records.length; i++) bytes += records[i].value?.length ?? 0;
    let pending = this.pending;
    if (
      pending === null ||
      pending.records.length + records.length > LIMITS.maxBatchMessages ||
      (pending.bytes > 0 && pending.bytes + bytes > MAX_MERGED_APPEND_BYTES)
    ) {
      pending = this.pending = { records: [], waiters: [], bytes: 0 };
      const flushing = pending;
      queueMicrotask(() => this.flush(flushing));
    }
    const start = pending.records.length;
    pending.bytes += bytes;
    for (let i = 0; i < records.length; i++) pending.records.push(records[i]);
    return new Promise((resolve, reject) => pending.waiters.push({ start, resolve, reject }));
  }

  private flush(batch: PendingAppend): void {
    if (this.pending === batch) this.pending = null;
    this.appendNow(batch.records).then(
      ({ baseOffset }) => {
        for (const w of batch.waiters) w.resolve(baseOffset + w.start);
      },
      (err: unknown) => {
        for (const w of batch.waiters) w.reject(err);
      },
    );
  }

  private async appendNow(records: RecordInput[]): Promise<AppendResult> {
    const result = await this.log.append(records);
    if (result.lastOffset + 1 > this.durableEnd) {
      this.durableEnd = result.lastOffset + 1;
      if (this.waiters.size > 0) {
        const woken = [...this.waiters];
        this.waiters.clear();
        for (const w of woken) w.wake();
      }
    }
    return result;
  }

  addWaiter(w: DataWaiter): void {
    this.waiters.add(w);
  }

  removeWaiter(w: DataWaiter): void {
    this.waiters.delete(w);
  }
}

/** What a subscription exposes to its topic (closing on delete). */
export interface TopicSubscriber {
  /** reason: NOT_FOUND when the topic is deleted, null when the broker closes. */
  closeForDelete(reason: WharfError | null): Promise<void>;
}

export class Topic {
  readonly spreader: KeylessSpreader;
  readonly publishMeter: RateMeter;
  readonly deliverMeter: RateMeter;
  readonly errorMeter: RateMeter;
  readonly subscribers = new Set<TopicSubscriber>();
  readonly coordinators = new Map<string, GroupCoordinator>();
  deleted = false;

  constructor(
    readonly name: string,
    readonly config: TopicConfig,
    readonly createdAt: number,
    readonly partitions: TopicPartition[],
    clock: Clock,
  ) {
    this.spreader = new KeylessSpreader(config.partitions);
    this.publishMeter = new RateMeter(clock);
    this.deliverMeter = new RateMeter(clock);
    this.errorMeter = new RateMeter(clock);
  }

  info(): TopicInfo {
    return { name: this.name, kind: 'topic', ...this.config, createdAt: this.createdAt };
  }
}
