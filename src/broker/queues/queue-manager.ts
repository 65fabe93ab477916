// All queues of a broker: create/delete/purge/list/describe, receive/consume/redrive, and the
// KindManager face (publish, stats, close) the Broker routes to by catalog kind.
import { LIMITS, WharfError, checkOptionFields } from '../../common/index.js';
import type { LogOptions, RecordInput } from '../../storage/index.js';
import type { BrokerContext, KindManager } from '../context.js';
import {
  RECEIVE_OPTION_FIELDS,
  REDRIVE_OPTION_FIELDS,
  type ConsumeOptions,
  type NackOptions,
  type QueueInfo,
  type QueueOptions,
  type QueueStats,
  type ReceiveOptions,
  type RedriveOptions,
} from '../queue-types.js';
import type { MessageInput, PublishResult } from '../types.js';
import { QueueConsumer } from './consumer.js';
import { checkReceiveLimits } from './read-limits.js';
import type { Delivery } from './delivery.js';
import type { HandlerOutcome } from './handler-outcome.js';
import { QueueEngine, type QueueHost } from './queue.js';
import { ByteBudget, RECENT_APPENDS_BROKER_BYTES } from './recent-appends.js';
import { resolveQueueOptions, type ResolvedQueueOptions } from './queue-config.js';
import { QueuePublisher } from './queue-publish.js';
import { redriveRecord } from './queue-record.js';

const DEFAULT_QUEUE_SEGMENT_BYTES = 64 * 1024 * 1024;

interface OpenQueue {
  engine: QueueEngine;
  publisher: QueuePublisher;
  consumers: Set<QueueConsumer>;
  info: QueueInfo;
  /** gathersSinglePublishes, from options that never change once the queue is created. */
  gathersSingles: boolean;
}

/**
 * Whether single publishes to a queue with these options may be stored as one batch
 * (single-publishes.ts). Not where a batch is judged as a whole differently from its messages one
 * by one: overflow 'block' and a rate limit wait for room or tokens for all its messages at once,
 * 'drop-lowest-priority' weighs the batch by its highest priority, and content-based dedup may
 * find a repeat of a publish still in flight in it (the batch then waits for that original, and
 * every single gathered in it with it).
 */
function gathersSingles(o: ResolvedQueueOptions): boolean {
  return (
    o.overflow !== 'block' &&
    o.overflow !== 'drop-lowest-priority' &&
    o.rateLimit === undefined &&
    o.contentBasedDedup !== true
  );
}

function queuePath(name: string): string[] {
  return ['queues', name];
}

export class QueueManager implements KindManager {
  private readonly queues = new Map<string, OpenQueue>();
  private closed = false;
  private readonly host: QueueHost;

  private constructor(private readonly ctx: BrokerContext) {
    this.host = {
      clock: ctx.clock,
      appendTo: (queue: string, records: RecordInput[]) => this.get(queue).engine.appendRecords(records),
      depthOf: (queue: string) => this.queues.get(queue)?.engine.depth() ?? 0,
      recentAppendsBudget: new ByteBudget(RECENT_APPENDS_BROKER_BYTES),
    };
  }

  static async open(ctx: BrokerContext): Promise<QueueManager> {
    const m = new QueueManager(ctx);
    for (const entry of ctx.catalog.list('queue')) {
      const options = resolveQueueOptions(entry.config as QueueOptions, ctx.options.maxMessageBytes, true);
      await m.openQueue(entry.name, options, entry.createdAt);
    }
    // Not as each opens: a dead-letter queue may come later in the catalog.
    for (const q of m.queues.values()) await q.engine.deadLetterRecovered();
    return m;
  }

  private async openQueue(name: string, options: ResolvedQueueOptions, createdAt: number): Promise<OpenQueue> {
    const s = this.ctx.storage;
    const logOptions: LogOptions = {
      fsync: this.ctx.options.fsync,
      fsyncIntervalMs: this.ctx.options.fsyncIntervalMs,
      segmentBytes: options.segmentBytes ?? DEFAULT_QUEUE_SEGMENT_BYTES,
      segmentMs: LIMITS.segmentMs,
      indexIntervalBytes: LIMITS.indexIntervalBytes,
    };
    const base = queuePath(name);
    const logs = await Promise.all(
      Array.from({ length: options.priorities }, (_, i) => s.openLog([...base, `p${i}`], logOptions)),
    );
    const delayLog = await s.openLog([...base, 'delay'], logOptions);
    const journal = await s.openJournal([...base, 'state'], {
      fsync: this.ctx.options.fsync,
      fsyncIntervalMs: this.ctx.options.fsyncIntervalMs,
    });
    const engine = new QueueEngine(
      name,
      options,
      { logs, delayLog, journal, shareReadBuffers: s.kind === 'disk' },
      this.host,
    );
    await engine.recover();
    const publisher = new QueuePublisher(engine, this.ctx.producers);
    await publisher.rebuildDedup(); // for exchanges: dedup windows survive a restart
    const open: OpenQueue = {
      engine,
      publisher,
      consumers: new Set(),
      info: { name, kind: 'queue', options, createdAt },
      gathersSingles: gathersSingles(options),
    };
    this.queues.set(name, open);
    return open;
  }

  private get(name: string): OpenQueue {
    this.ensureOpen();
    const q = this.queues.get(name);
    if (q === undefined) {
      this.ctx.catalog.require(name, 'queue'); // says what the name is, when it is something else
      throw new WharfError('NOT_FOUND', `no queue named ${JSON.stringify(name)}; create it first`);
    }
    return q;
  }

  private ensureOpen(): void {
    if (this.closed) throw new WharfError('CLOSED', 'the broker is closed; open it again');
  }

  // ------------------------------------------------------------------ administration

  async createQueue(name: string, options: QueueOptions = {}): Promise<QueueInfo> {
    this.ensureOpen();
    const resolved = resolveQueueOptions(options, this.ctx.options.maxMessageBytes);
    const dlq = resolved.deadLetterQueue;
    if (dlq !== undefined) {
      if (dlq === name)
        throw new WharfError(
          'INVALID_ARGUMENT',
          `queue ${JSON.stringify(name)} cannot be its own deadLetterQueue; create a separate queue such as "${name}.dlq"`,
        );
      this.ctx.catalog.require(dlq, 'queue');
    }
    this.ctx.catalog.reserve(name, 'queue');
    const createdAt = this.ctx.clock.now();
    let open: OpenQueue | undefined;
    try {
      // Files a crash left behind belong to no one: a delete that crashed after the catalog forgot
      // the name, or a create that crashed before the catalog was written. Opened as found, they
      // would hand the new queue the old one's messages and state.
      await this.ctx.storage.remove(queuePath(name));
      open = await this.openQueue(name, resolved, createdAt);
      await this.ctx.catalog.commit({
        name,
        kind: 'queue',
        config: resolved as unknown as Record<string, unknown>,
        createdAt,
      });
      return open.info;
    } catch (err) {
      this.ctx.catalog.release(name);
      if (open !== undefined) {
        this.queues.delete(name);
        await open.engine.close().catch(() => undefined);
      }
      await this.ctx.storage.remove(queuePath(name)).catch(() => undefined);
      throw err;
    }
  }

  async deleteQueue(name: string): Promise<void> {
    const q = this.get(name);
    for (const other of this.queues.values()) {
      if (other.info.options.deadLetterQueue === name && other.info.name !== name) {
        throw new WharfError(
          'CONFLICT',
          `queue ${JSON.stringify(name)} is the deadLetterQueue of ${JSON.stringify(other.info.name)}; delete that queue first or point it elsewhere`,
        );
      }
    }
    this.queues.delete(name);
    // Consumers stop without waiting for their running handlers: the queue and its leases are going.
    const gone = new WharfError('NOT_FOUND', `queue ${JSON.stringify(name)} was deleted`);
    for (const c of q.consumers) await c.abandon(gone);
    await q.engine.close();
    const release = await this.ctx.catalog.removeAndHold(name);
    try {
      await this.ctx.storage.remove(queuePath(name));
    } finally {
      release();
    }
  }

  purgeQueue(name: string): Promise<number> {
    return this.get(name).engine.purge();
  }

  async listQueues(): Promise<QueueInfo[]> {
    this.ensureOpen();
    return [...this.queues.values()]
      .map((q) => q.info)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async describeQueue(name: string): Promise<QueueInfo> {
    return this.get(name).info;
  }

  // ------------------------------------------------------------------ messages

  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]> {
    return this.get(name).publisher.publish(messages);
  }

  /** Leases up to options.max messages; `decode` false leaves each as its stored record (receiveStored). */
  async receive(queue: string, options: ReceiveOptions = {}, decode = true): Promise<Delivery[]> {
    checkOptionFields(options, RECEIVE_OPTION_FIELDS, 'receive option', '{ max: 10, waitMs: 1000 }');
    const q = this.get(queue);
    const { max, waitMs, visibilityTimeoutMs } = checkReceiveLimits(options);
    const leaseMs = visibilityTimeoutMs ?? q.engine.options.visibilityTimeoutMs;
    const deadline = q.engine.clock.now() + waitMs;
    for (;;) {
      const msgs = await q.engine.take(max, leaseMs, decode);
      const left = deadline - q.engine.clock.now();
      if (msgs.length > 0 || left <= 0) return msgs;
      if (q.engine.closed) return this.closedUnder(queue, q);
      const handed = await q.engine.waitForWork(left, undefined, { max, leaseMs, decode });
      if (handed.length > 0) return handed;
    }
  }

  /**
   * A long poll whose queue closed under it: deleted (NOT_FOUND, as for a receive that came a moment
   * later) or closed with its broker (nothing to return).
   */
  private closedUnder(name: string, q: OpenQueue): Delivery[] {
    if (!this.closed && this.queues.get(name) !== q)
      throw new WharfError('NOT_FOUND', `queue ${JSON.stringify(name)} was deleted while this receive waited`);
    return [];
  }

  /** A push consumer; `decode` false hands the handler each delivery as its stored record (consumeStored). */
  async consume(
    queue: string,
    options: ConsumeOptions,
    handler: (message: Delivery) => Promise<void> | HandlerOutcome | void,
    decode = true,
  ): Promise<QueueConsumer> {
    const q = this.get(queue);
    const c = new QueueConsumer(q.engine, options === undefined ? {} : options, handler, decode);
    q.consumers.add(c);
    const close = c.close.bind(c);
    c.close = async () => {
      q.consumers.delete(c);
      await close();
    };
    return c.start();
  }

  /** Whether single publishes to this queue may be stored as one batch (gathersSingles). */
  gathersSinglePublishes(name: string): boolean {
    return this.queues.get(name)?.gathersSingles === true;
  }

  // for exchanges: admission, receipt check and ack-by-position for atomic routing and transactions.
  admit(name: string, messages: MessageInput[]): void {
    this.get(name).publisher.admit(messages);
  }

  checkReceipt(queue: string, receipt: string): void {
    this.get(queue).engine.checkReceipt(receipt);
  }

  ackByReceiptPosition(queue: string, receipt: string): Promise<void> {
    return this.get(queue).engine.ackByReceiptPosition(receipt);
  }

  /** Settlement by receipt, for the server layers (HTTP /ack, native protocol). */
  ack(queue: string, receipt: string): Promise<void> {
    return this.get(queue).engine.ack(receipt);
  }

  nack(queue: string, receipt: string, options?: NackOptions): Promise<void> {
    return this.get(queue).engine.nack(receipt, options);
  }

  /** Hands a leased message back, visible at once, without counting its delivery (it never reached anyone). */
  release(queue: string, receipt: string): Promise<void> {
    return this.get(queue).engine.release(receipt);
  }

  extendVisibility(queue: string, receipt: string, ms: number): Promise<void> {
    return this.get(queue).engine.extendVisibility(receipt, ms);
  }

  /** Moves dead letters back to their source queue (or `to`); resolves with how many moved. */
  async redrive(deadLetterQueue: string, options: RedriveOptions = {}): Promise<number> {
    checkOptionFields(options, REDRIVE_OPTION_FIELDS, 'redrive option', "{ to: 'orders', max: 100 }");
    const dlq = this.get(deadLetterQueue);
    if (options.to !== undefined) this.get(options.to);
    if (options.to === deadLetterQueue) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `redrive of ${JSON.stringify(deadLetterQueue)} into itself would take its own messages again without end; pass another queue as { to }`,
      );
    }
    const max = options.max ?? Infinity;
    if (!(max === Infinity || (Number.isSafeInteger(max) && max >= 0)))
      throw new WharfError('INVALID_ARGUMENT', `redrive max ${max}: pass a non-negative integer`);
    // What is ready when the redrive starts, at most: a message that comes back to the queue being
    // drained (its x-source-queue names it) is not taken again in the same redrive.
    const limit = Math.min(max, dlq.engine.depth());
    let moved = 0;
    let missing: string | undefined;
    let selfSourced = false;
    while (moved < limit) {
      // Not decoded: a dead letter is copied to its target as its stored record.
      const batch = await dlq.engine.take(Math.min(100, limit - moved), 60_000, false);
      if (batch.length === 0) break;
      for (const m of batch) {
        const { record, sourceQueue } = redriveRecord(m.record, this.host.clock.now());
        const target = options.to ?? sourceQueue;
        // A letter whose x-source-queue names the queue being drained would be taken again: it stays,
        // as one whose target is missing does, and the others go on.
        const q = target === undefined || target === deadLetterQueue ? undefined : this.queues.get(target);
        if (q === undefined) {
          if (target === deadLetterQueue) selfSourced = true;
          else missing = target ?? '(no x-source-queue header)';
          await dlq.engine.release(m.receipt);
          continue;
        }
        await q.engine.appendRecords([record]);
        await m.ack();
        moved++;
      }
      if (missing !== undefined || selfSourced) break;
    }
    if (selfSourced && moved === 0) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `a dead letter in ${JSON.stringify(deadLetterQueue)} names that queue itself as its x-source-queue; pass another queue as { to }`,
      );
    }
    if (missing !== undefined && moved === 0) {
      throw new WharfError(
        'NOT_FOUND',
        `redrive target queue ${JSON.stringify(missing)} does not exist; pass { to } or create it`,
      );
    }
    return moved;
  }

  async stats(name: string): Promise<QueueStats> {
    return this.get(name).engine.stats();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const all = [...this.queues.values()];
    for (const q of all) for (const c of q.consumers) await c.close();
    this.closed = true;
    for (const q of all) await q.engine.close();
    this.queues.clear();
  }
}
