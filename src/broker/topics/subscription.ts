// One subscribe() call: a member of a consumer group (or a private reader without a group) that runs
// a PartitionFetcher per assigned partition and heartbeats to its group's coordinator.
import { randomUUID } from 'node:crypto';
import { LIMITS, WharfError, checkOptionFields, validateName } from '../../common/index.js';
import type { Clock, TimerHandle } from '../../common/index.js';
import {
  SUBSCRIBE_OPTION_FIELDS,
  type DeliveryGate,
  type StartPosition,
  type SubscribeOptions,
  type Subscription,
  type TopicHandler,
} from '../types.js';
import type { GroupCoordinator, GroupMember, PartitionGrant } from './group-coordinator.js';
import { PartitionFetcher } from './partition-fetcher.js';
import { validateStartOffsets } from './start-offsets.js';
import type { FetcherHost } from './partition-fetcher.js';
import type { Topic, TopicPartition, TopicSubscriber } from './topic.js';
import { StopSignal } from '../keep-alive.js';

/** Longest session a member may ask for. */
const MAX_SESSION_TIMEOUT_MS = 30 * 60_000;
/** Most messages per partition a subscription may have in flight to its handler (maxInFlight). */
export const MAX_IN_FLIGHT_PER_PARTITION = 10_000;

export interface ResolvedSubscribeOptions {
  group: string | null;
  from: StartPosition;
  /** A reader without a group: its start offset in each partition named (null: `from` everywhere). */
  startOffsets: Map<number, number> | null;
  ackMode: 'manual' | 'auto';
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Messages per partition handed to the handler before the oldest settles (1 = one at a time). */
  maxInFlight: number;
  onError: (err: WharfError) => void;
}

function invalid(message: string): WharfError {
  return new WharfError('INVALID_ARGUMENT', message);
}

export function validateStartPosition(pos: unknown, what = 'from'): StartPosition {
  if (pos === 'earliest' || pos === 'latest') return pos;
  // Exactly one field: { offset: 5, partiton: 1 } must not quietly mean { offset: 5 }.
  if (pos !== null && typeof pos === 'object' && !Array.isArray(pos) && Object.keys(pos).length === 1) {
    const o = pos as { offset?: unknown; timestamp?: unknown };
    if (typeof o.offset === 'number' && Number.isSafeInteger(o.offset) && o.offset >= 0) return { offset: o.offset };
    if (Object.hasOwn(o, 'timestamp')) {
      // The log looks timestamps up in whole milliseconds; refused here, not later inside the fetcher,
      // where the subscription would open and then never deliver.
      if (typeof o.timestamp === 'number' && Number.isSafeInteger(o.timestamp)) return { timestamp: o.timestamp };
      throw invalid(
        `${what}.timestamp is ${String(o.timestamp)}; use whole milliseconds since the epoch (a safe integer, e.g. Date.now())`,
      );
    }
  }
  throw invalid(`${what} is ${JSON.stringify(pos)}; use 'earliest', 'latest', { offset: n >= 0 } or { timestamp: ms }`);
}

/**
 * Validates SubscribeOptions for a topic of `partitionCount` partitions (INVALID_ARGUMENT: unknown
 * fields, null, an array, a value out of range); undefined = all defaults.
 */
export function resolveSubscribeOptions(
  given: SubscribeOptions | undefined,
  topic: string,
  partitionCount: number,
): ResolvedSubscribeOptions {
  const o = given === undefined ? {} : given;
  checkOptionFields(o, SUBSCRIBE_OPTION_FIELDS, 'subscribe option', "{ group: 'billing' }");
  const group = o.group === undefined || o.group === null ? null : validateName(o.group, 'group name');
  const sessionTimeoutMs = o.sessionTimeoutMs ?? LIMITS.sessionTimeoutMs;
  if (!Number.isSafeInteger(sessionTimeoutMs) || sessionTimeoutMs < 1 || sessionTimeoutMs > MAX_SESSION_TIMEOUT_MS) {
    throw invalid(
      `sessionTimeoutMs is ${JSON.stringify(o.sessionTimeoutMs)}; use an integer from 1 to ${MAX_SESSION_TIMEOUT_MS}`,
    );
  }
  const heartbeatIntervalMs =
    o.heartbeatIntervalMs ?? Math.max(1, Math.min(LIMITS.heartbeatIntervalMs, Math.floor(sessionTimeoutMs / 3)));
  if (
    !Number.isSafeInteger(heartbeatIntervalMs) ||
    heartbeatIntervalMs < 1 ||
    heartbeatIntervalMs >= sessionTimeoutMs
  ) {
    throw invalid(
      `heartbeatIntervalMs is ${JSON.stringify(o.heartbeatIntervalMs)}; use an integer from 1 to below sessionTimeoutMs (${sessionTimeoutMs})`,
    );
  }
  if (o.ackMode !== undefined && o.ackMode !== 'manual' && o.ackMode !== 'auto')
    throw invalid(`ackMode is ${JSON.stringify(o.ackMode)}; use 'manual' or 'auto'`);
  if (o.onError !== undefined && typeof o.onError !== 'function') throw invalid('onError must be a function');
  const maxInFlight = o.maxInFlight ?? 1;
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > MAX_IN_FLIGHT_PER_PARTITION) {
    throw invalid(
      `maxInFlight is ${JSON.stringify(o.maxInFlight)}; use an integer from 1 to ${MAX_IN_FLIGHT_PER_PARTITION}`,
    );
  }
  return {
    group,
    from: o.from === undefined ? 'latest' : validateStartPosition(o.from),
    startOffsets: validateStartOffsets(o.startOffsets, group, topic, partitionCount),
    ackMode: o.ackMode ?? 'manual',
    sessionTimeoutMs,
    heartbeatIntervalMs,
    maxInFlight,
    onError: o.onError ?? (() => undefined),
  };
}

/** The offset a position names in one partition, within [startOffset, durable end]. */
export async function resolvePosition(part: TopicPartition, pos: StartPosition): Promise<number> {
  const start = part.log.startOffset;
  const end = part.durableEnd;
  if (pos === 'earliest') return start;
  if (pos === 'latest') return end;
  if ('offset' in pos) return Math.max(start, Math.min(end, pos.offset));
  return Math.max(start, Math.min(end, await part.log.offsetForTimestamp(pos.timestamp)));
}

export class TopicSubscription implements Subscription, GroupMember, TopicSubscriber, FetcherHost {
  readonly memberId = randomUUID();
  readonly autoAck: boolean;
  readonly commit: ((partition: number, assignmentEpoch: number, offset: number) => Promise<boolean>) | null;
  readonly committedUnderGrant: ((partition: number, assignmentEpoch: number) => number) | null;
  readonly sessionTimeoutMs: number;
  readonly shareReadBuffers: boolean;
  readonly maxInFlight: number;
  private readonly fetchers = new Map<number, PartitionFetcher>();
  /**
   * Fetchers taken out of service (stopped or aborted) whose handlers may still run, until they
   * have returned: a revoke keeps the grant current while they settle, and a transaction of one of
   * their messages still asks what is unsettled under it (lowestUnsettledOffset).
   */
  private readonly retiring = new Set<PartitionFetcher>();
  private heartbeatTimer: TimerHandle | null = null;
  private closed = false;
  private crashed = false;
  /** Fired once the subscription stops, by close() or because its topic is deleted (keep-alive.ts), with why. */
  readonly stopped = new StopSignal();
  readonly ended = this.stopped.ended;

  readonly topic: string;

  constructor(
    readonly topicRef: Topic,
    private readonly options: ResolvedSubscribeOptions,
    readonly handler: TopicHandler,
    private readonly coordinator: GroupCoordinator | null,
    readonly clock: Clock,
    storageKind: 'disk' | 'memory',
    /** true: the handler gets StoredTopicMessages, records not decoded (Broker.subscribeStored). */
    readonly storedRecords = false,
    /** What an auto-ack subscription may commit and deliver (Broker.subscribeStored); null: everything. */
    readonly gate: DeliveryGate | null = null,
  ) {
    this.shareReadBuffers = storageKind === 'disk';
    this.topic = topicRef.name;
    this.autoAck = options.ackMode === 'auto';
    this.maxInFlight = options.maxInFlight;
    this.sessionTimeoutMs = options.sessionTimeoutMs;
    const c = coordinator;
    this.commit =
      c === null
        ? null
        : (partition, assignmentEpoch, offset) => c.commit(this.memberId, partition, assignmentEpoch, offset);
    this.committedUnderGrant =
      c === null ? null : (partition, assignmentEpoch) => c.committedUnderGrant(partition, assignmentEpoch);
  }

  get group(): string | null {
    return this.options.group;
  }

  onError(err: WharfError): void {
    this.options.onError(err);
  }

  async open(): Promise<void> {
    this.topicRef.subscribers.add(this);
    if (this.coordinator === null) {
      // A private reader commits nothing, so its grants need no epoch.
      this.onAssign(this.topicRef.partitions.map((p) => ({ partition: p.index, assignmentEpoch: 0 })));
      return;
    }
    await this.coordinator.join(this);
    this.scheduleHeartbeat();
  }

  assignments(): number[] {
    return [...this.fetchers.keys()].sort((a, b) => a - b);
  }

  async seek(position: StartPosition): Promise<void> {
    const pos = validateStartPosition(position, 'seek position');
    if (this.closed || this.crashed)
      throw new WharfError('CLOSED', 'this subscription is closed; subscribe again to seek');
    const parts = this.topicRef.partitions;
    if (this.coordinator !== null) {
      await this.coordinator.seek((p) => resolvePosition(parts[p], pos));
      return;
    }
    const owned = this.assignments();
    await this.onRevoke(owned);
    // Closed while the old fetchers stopped: close() found nothing to stop, and fetchers started
    // now would deliver after close() resolved, with nothing left to stop them.
    if (this.closed || this.crashed) return;
    for (const p of owned) this.startFetcher(p, 0, () => resolvePosition(parts[p], pos), undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.heartbeatTimer?.cancel();
    this.topicRef.subscribers.delete(this);
    try {
      if (this.coordinator !== null && !this.crashed) await this.coordinator.leave(this.memberId);
      else await this.onRevoke(this.assignments());
    } finally {
      this.stopped.fire();
    }
  }

  /**
   * The topic is being deleted (`reason`, what `ended` settles with) or the broker closes (null):
   * stop at once; nothing is committed.
   */
  async closeForDelete(reason: WharfError | null): Promise<void> {
    this.closed = true;
    this.heartbeatTimer?.cancel();
    this.topicRef.subscribers.delete(this);
    this.abortFetchers();
    this.stopped.fire(reason);
  }

  /**
   * Test hook (internal): behave like a crashed process. Heartbeats and processing stop, nothing is
   * committed and the group is not told; the session timeout removes the member.
   */
  simulateCrash(): void {
    this.crashed = true;
    this.heartbeatTimer?.cancel();
    this.abortFetchers();
  }

  // ---------------------------------------------------------------- GroupMember

  onAssign(grants: readonly PartitionGrant[]): void {
    if (this.crashed || this.closed) return; // a dead process starts nothing; its session will expire
    const c = this.coordinator;
    for (const { partition: p, assignmentEpoch } of grants) {
      const committed = c?.committed(p);
      // Only a reader without a group has startOffsets (validateStartOffsets), so no commit competes.
      const offset = this.options.startOffsets?.get(p);
      const from = offset === undefined ? this.options.from : { offset };
      this.startFetcher(
        p,
        assignmentEpoch,
        async () => committed ?? (await resolvePosition(this.topicRef.partitions[p], from)),
        committed,
      );
    }
  }

  async onRevoke(partitions: number[]): Promise<void> {
    const stopping: Promise<void>[] = [];
    for (const p of partitions) {
      const f = this.retire(p);
      if (f !== undefined) stopping.push(f.stop());
    }
    await Promise.all(stopping);
  }

  onExpired(): void {
    this.abortFetchers();
  }

  lowestUnsettledOffset(partition: number, assignmentEpoch: number): number | null {
    const f = this.fetchers.get(partition);
    if (f !== undefined && f.assignmentEpoch === assignmentEpoch) return f.lowestUnsettledOffset();
    for (const r of this.retiring)
      if (r.partition.index === partition && r.assignmentEpoch === assignmentEpoch) return r.lowestUnsettledOffset();
    return null;
  }

  /** Takes partition p's fetcher out of service, kept in `retiring` until its handlers have returned. */
  private retire(p: number): PartitionFetcher | undefined {
    const f = this.fetchers.get(p);
    if (f === undefined) return undefined;
    this.fetchers.delete(p);
    this.retiring.add(f);
    const forget = (): void => void this.retiring.delete(f);
    void f.finished.then(forget, forget);
    return f;
  }

  private abortFetchers(): void {
    for (const p of [...this.fetchers.keys()]) this.retire(p)?.abort();
  }

  private startFetcher(
    p: number,
    assignmentEpoch: number,
    start: () => Promise<number>,
    committed: number | undefined,
  ): void {
    this.fetchers.set(p, new PartitionFetcher(this, this.topicRef.partitions[p], assignmentEpoch, start, committed));
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = this.clock.setTimer(this.options.heartbeatIntervalMs, () => {
      if (this.closed || this.crashed || this.coordinator === null) return;
      if (!this.coordinator.heartbeat(this.memberId)) {
        // Our session expired (e.g. the event loop was blocked): rejoin like a Kafka consumer would.
        void this.coordinator.join(this).catch((err: unknown) => this.onError(err as WharfError));
      }
      this.scheduleHeartbeat();
    });
  }
}
