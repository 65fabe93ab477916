// The embedded broker: opens storage and the catalog, builds one manager per kind of name (topics
// now; queues and exchanges register theirs in their own sections below) and routes publish, stats
// and close by the catalog kind of the name.
import { LIMITS, WharfError, checkOptionFields, rejectReservedName, systemClock } from '../common/index.js';
import type { Clock, TimerHandle } from '../common/index.js';
import { openDiskStorage, openMemoryStorage } from '../storage/index.js';
import type { Storage } from '../storage/index.js';
import { Catalog } from './catalog.js';
import { ProducerDedupe } from './idempotence.js';
import { SinglePublishes } from './single-publishes.js';
import { KeepAlive, heldWhileOpen } from './keep-alive.js';
import type { CatalogKind } from './catalog.js';
import { BROKER_DEFAULTS } from './context.js';
import type { BrokerContext, KindManager, ResolvedBrokerOptions } from './context.js';
import { TopicManager } from './topics/topic-manager.js';
import { StoredTopicMessage } from './topics/partition-fetcher.js';
import {
  BROKER_OPTION_FIELDS,
  type BrokerOptions,
  type DeliveryGate,
  type MessageInput,
  type PublishResult,
  type SubscribeOptions,
  type Subscription,
  type StoredTopicHandler,
  type TopicHandler,
  type TopicInfo,
  type TopicMessage,
  type TopicOptions,
} from './types.js';
import type { Stats, Wharf_Core } from './wharf.js';
import type { Wharf_Topics } from './types.js';
import { QueueManager } from './queues/queue-manager.js';
import { openExchanges, type ExchangesModule } from './exchanges/index.js';
import type {
  BindingInfo,
  BindingOptions,
  BindingTarget,
  ExchangeInfo,
  ExchangeOptions,
  Transaction,
  Wharf_Exchanges,
  Wharf_Transactions,
} from './exchange-types.js';
import type {
  ConsumeOptions,
  Consumer,
  NackOptions,
  QueueHandler,
  StoredQueueDelivery,
  StoredQueueHandler,
  QueueInfo,
  QueueMessage,
  QueueOptions,
  ReceiveOptions,
  RedriveOptions,
  Wharf_Queues,
} from './queue-types.js';

function resolveOptions(o: BrokerOptions): ResolvedBrokerOptions {
  if (o === null || typeof o !== 'object')
    throw new WharfError('INVALID_ARGUMENT', 'Broker.open needs options: { dataDir } or { inMemory: true }');
  checkOptionFields(o, BROKER_OPTION_FIELDS, 'Broker.open option', "{ dataDir: './data' }");
  const inMemory = o.inMemory === true;
  if (!inMemory && (typeof o.dataDir !== 'string' || o.dataDir.length === 0)) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      'Broker.open needs a dataDir (a directory for the data) or inMemory: true',
    );
  }
  if (o.fsync !== undefined && o.fsync !== 'always' && o.fsync !== 'interval' && o.fsync !== 'never') {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `fsync is ${JSON.stringify(o.fsync)}; use 'always', 'interval' or 'never'`,
    );
  }
  const posInt = (v: number | undefined, name: string, dflt: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (v === undefined) return dflt;
    if (!Number.isSafeInteger(v) || v < 1 || v > max)
      throw new WharfError(
        'INVALID_ARGUMENT',
        `${name} is ${JSON.stringify(v)}; use a positive integer${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}`,
      );
    return v;
  };
  return {
    dataDir: inMemory ? null : o.dataDir!,
    inMemory,
    fsync: o.fsync ?? 'always',
    fsyncIntervalMs: posInt(o.fsyncIntervalMs, 'fsyncIntervalMs', LIMITS.fsyncIntervalMs),
    maxMessageBytes: posInt(
      o.maxMessageBytes,
      'maxMessageBytes',
      LIMITS.maxMessageBytes,
      LIMITS.maxMessageBytesCeiling,
    ),
    retentionCheckIntervalMs: posInt(
      o.retentionCheckIntervalMs,
      'retentionCheckIntervalMs',
      BROKER_DEFAULTS.retentionCheckIntervalMs,
    ),
  };
}

/**
 * Data directories written before producer sequences moved into the records kept them in an
 * `idempotence` journal; the records are now the only source, so the old file is deleted.
 */
async function dropIdempotenceJournal(storage: Storage): Promise<void> {
  if (!(await storage.list([])).includes('idempotence')) return;
  await storage.remove(['idempotence.tmp']); // a compaction the crash interrupted
  await storage.remove(['idempotence']);
}

export class Broker implements Wharf_Core, Wharf_Topics, Wharf_Queues, Wharf_Exchanges, Wharf_Transactions {
  private readonly managers = new Map<CatalogKind, KindManager>();
  private retentionTimer: TimerHandle | null = null;
  private closing: Promise<void> | null = null;
  /** Open consumers and subscriptions keep the process running (keep-alive.ts). */
  private readonly keepAlive = new KeepAlive();
  /** Single publishes to a queue or topic in one tick are stored as one batch (single-publishes.ts). */
  private readonly singles = new SinglePublishes((name, messages) => this.publishNow(name, messages));

  private constructor(
    /** Shared with the managers; server layers read options and the catalog from here. */
    readonly context: BrokerContext,
    private readonly topics: TopicManager,
  ) {
    this.managers.set('topic', topics);
  }

  static async open(options: BrokerOptions): Promise<Broker> {
    const resolved = resolveOptions(options);
    const clock: Clock = options.clock ?? systemClock;
    const storage: Storage = resolved.inMemory ? openMemoryStorage() : await openDiskStorage(resolved.dataDir!);
    try {
      const catalog = await Catalog.load(storage);
      await dropIdempotenceJournal(storage);
      const ctx: BrokerContext = { storage, clock, options: resolved, catalog, producers: new ProducerDedupe() };
      const broker = new Broker(ctx, await TopicManager.open(ctx));
      // ---- queues: register the QueueManager here (broker.managers.set('queue', ...)).
      broker.queues = await QueueManager.open(ctx);
      broker.managers.set('queue', broker.queues);
      // ---- exchanges: register the ExchangeManager here.
      broker.exchanges = await openExchanges(ctx, broker.topics, broker.queues, broker.queues);
      broker.managers.set('exchange', {
        routes: true,
        publish: (name, messages) => broker.exchanges!.manager.publish(name, messages),
        stats: (name) => broker.exchanges!.manager.stats(name),
        close: () => broker.exchanges!.close(),
      });
      broker.scheduleRetention();
      return broker;
    } catch (err) {
      await storage.close().catch(() => undefined);
      throw err;
    }
  }

  // ------------------------------------------------------------------ core (all kinds)

  publish(name: string, message: MessageInput): Promise<PublishResult>;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  async publish(name: string, input: MessageInput | MessageInput[]): Promise<PublishResult | PublishResult[]> {
    // Refused alone and at once: a closed broker, a name that is not one.
    const kind = this.kindOf(name);
    const gathers =
      !Array.isArray(input) && (kind === 'topic' || (kind === 'queue' && this.queues.gathersSinglePublishes(name)));
    if (gathers) return this.singles.single(name, input);
    // Singles gathering for other names were called first: they go first (an exchange may route to them).
    this.singles.flushAll();
    return Array.isArray(input) ? this.singles.many(name, input) : (await this.singles.many(name, [input]))[0];
  }

  /**
   * Publishes a batch now: from publish(), or a batch of single publishes gathered before close()
   * (close waits for those, so they go on while it does).
   */
  private async publishNow(name: string, list: MessageInput[]): Promise<PublishResult[]> {
    const manager = this.managerOf(this.kindOf(name, true));
    return ProducerDedupe.wants(list)
      ? this.context.producers.publish(name, list, manager.routes === true, (fresh) => manager.publish(name, fresh))
      : manager.publish(name, list);
  }

  async stats(name: string): Promise<Stats> {
    return (await this.managerFor(name).stats(name)) as Stats;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Single publishes made before close() go to the broker now, as they would have without
      // gathering; only those held behind a merged batch still unanswered are waited for.
      const handing = this.singles.sendAll();
      if (handing !== null) await handing;
      this.retentionTimer?.cancel();
      await this.exchanges?.stopWebhooks(); // webhook pushers consume queues: stop them first
      for (const m of this.managers.values()) await m.close();
      this.keepAlive.stop(); // the managers closed every consumer and subscription
      await this.context.storage.close();
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------ topics (Kafka model)

  async createTopic(name: string, options?: TopicOptions): Promise<TopicInfo> {
    this.ensureOpen();
    rejectReservedName(name);
    return this.topics.createTopic(name, options);
  }

  async deleteTopic(name: string): Promise<void> {
    this.ensureOpen();
    rejectReservedName(name);
    this.singles.flushAll();
    return this.topics.deleteTopic(name);
  }

  async listTopics(): Promise<TopicInfo[]> {
    this.ensureOpen();
    return this.topics.listTopics();
  }

  async describeTopic(name: string): Promise<TopicInfo> {
    this.ensureOpen();
    return this.topics.describeTopic(name);
  }

  async subscribe(topic: string, options: SubscribeOptions, handler: TopicHandler): Promise<Subscription> {
    this.ensureOpen();
    return heldWhileOpen(this.keepAlive, await this.topics.subscribe(topic, options, handler));
  }

  /**
   * subscribe() for a server that forwards deliveries as they are stored: the handler gets each
   * message's stored record, never decoded (see consumeStored). Same groups, commits and retries.
   * With ackMode 'auto', a `gate` bounds what is committed and delivered to what the server can send.
   */
  async subscribeStored(
    topic: string,
    options: SubscribeOptions,
    handler: StoredTopicHandler,
    gate: DeliveryGate | null = null,
  ): Promise<Subscription> {
    this.ensureOpen();
    const forward = (m: TopicMessage): Promise<void> | void => {
      if (!(m instanceof StoredTopicMessage))
        throw new WharfError('INTERNAL', 'invariant violated: a stored-records subscription got a decoded message');
      return handler(m);
    };
    return heldWhileOpen(this.keepAlive, await this.topics.subscribe(topic, options, forward, true, gate));
  }

  /** Runs retention now over every topic (or one); resolves with the number of segments deleted. */
  async applyRetention(topic?: string): Promise<number> {
    this.ensureOpen();
    return this.topics.applyRetention(topic);
  }

  // ------------------------------------------------------------------ queues (SQS / RabbitMQ model)
  // (the queue engineer's section: everything delegates to src/broker/queues/queue-manager.ts)

  private queues!: QueueManager;

  /** @internal Wharf's own components (webhook delivery) manage reserved `__wharf.` queues through this, bypassing the user-name check. */
  systemQueues(): QueueManager {
    return this.queues;
  }

  async createQueue(name: string, options?: QueueOptions): Promise<QueueInfo> {
    this.ensureOpen();
    rejectReservedName(name);
    return this.queues.createQueue(name, options);
  }

  async deleteQueue(name: string): Promise<void> {
    this.ensureOpen();
    rejectReservedName(name);
    this.singles.flushAll();
    return this.queues.deleteQueue(name);
  }

  async purgeQueue(name: string): Promise<number> {
    this.ensureOpen();
    rejectReservedName(name);
    this.singles.flushAll();
    return this.queues.purgeQueue(name);
  }

  async listQueues(): Promise<QueueInfo[]> {
    this.ensureOpen();
    return this.queues.listQueues();
  }

  async describeQueue(name: string): Promise<QueueInfo> {
    this.ensureOpen();
    return this.queues.describeQueue(name);
  }

  async receive(queue: string, options?: ReceiveOptions): Promise<QueueMessage[]> {
    this.ensureOpen();
    return this.queues.receive(queue, options);
  }

  /** receive() for a server that forwards deliveries as they are stored (see consumeStored). */
  async receiveStored(queue: string, options?: ReceiveOptions): Promise<StoredQueueDelivery[]> {
    this.ensureOpen();
    return this.queues.receive(queue, options, false);
  }

  async consume(queue: string, options: ConsumeOptions, handler: QueueHandler): Promise<Consumer> {
    this.ensureOpen();
    return heldWhileOpen(this.keepAlive, await this.queues.consume(queue, options, handler));
  }

  /**
   * consume() for a server that forwards deliveries as they are stored: the handler gets each
   * message's stored record, never decoded into strings, headers and payload (the native server
   * writes it to the wire from the record's bytes). Same leases, retries and dead-lettering.
   */
  async consumeStored(queue: string, options: ConsumeOptions, handler: StoredQueueHandler): Promise<Consumer> {
    this.ensureOpen();
    return heldWhileOpen(this.keepAlive, await this.queues.consume(queue, options, handler, false));
  }

  async redrive(deadLetterQueue: string, options?: RedriveOptions): Promise<number> {
    this.ensureOpen();
    return this.queues.redrive(deadLetterQueue, options);
  }

  /** Settles a delivery by its receipt (server layers: HTTP /ack, native protocol). */
  async ackReceipt(queue: string, receipt: string): Promise<void> {
    this.ensureOpen();
    return this.queues.ack(queue, receipt);
  }

  async nackReceipt(queue: string, receipt: string, options?: NackOptions): Promise<void> {
    this.ensureOpen();
    return this.queues.nack(queue, receipt, options);
  }

  /**
   * Hands a leased message back by its receipt, visible again at once and without counting the
   * delivery toward maxDeliveries: for a server whose answer could not reach its client (a long poll
   * whose client left), so the message was never delivered.
   */
  async releaseReceipt(queue: string, receipt: string): Promise<void> {
    this.ensureOpen();
    return this.queues.release(queue, receipt);
  }

  async extendVisibilityReceipt(queue: string, receipt: string, ms: number): Promise<void> {
    this.ensureOpen();
    return this.queues.extendVisibility(queue, receipt, ms);
  }
  // ---- end of the queue section

  // ------------------------------------------------------------------ exchanges + transactions (RabbitMQ / SNS model)
  // (the exchanges engineer's section: everything delegates to src/broker/exchanges/)

  private exchanges: ExchangesModule | null = null;

  private get exchangeManager(): ExchangesModule['manager'] {
    this.ensureOpen();
    return this.exchanges!.manager;
  }

  async createExchange(name: string, options: ExchangeOptions): Promise<ExchangeInfo> {
    rejectReservedName(name);
    return this.exchangeManager.createExchange(name, options);
  }

  async deleteExchange(name: string): Promise<void> {
    rejectReservedName(name);
    this.singles.flushAll();
    return this.exchangeManager.deleteExchange(name);
  }

  async listExchanges(): Promise<ExchangeInfo[]> {
    return this.exchangeManager.listExchanges();
  }

  async describeExchange(name: string): Promise<ExchangeInfo> {
    return this.exchangeManager.describeExchange(name);
  }

  async bind(exchange: string, target: BindingTarget, options?: BindingOptions): Promise<BindingInfo> {
    return this.exchangeManager.bind(exchange, target, options);
  }

  async unbind(exchange: string, target: BindingTarget, options?: BindingOptions): Promise<void> {
    return this.exchangeManager.unbind(exchange, target, options);
  }

  async listBindings(exchange?: string): Promise<BindingInfo[]> {
    return this.exchangeManager.listBindings(exchange);
  }

  /** Committed multi-target writes (exchange fan-outs, transactions) a crash interrupted, finished when this broker opened. */
  get recoveredIntents(): number {
    return this.exchanges?.recoveredIntents ?? 0;
  }

  /** Acks, publishes and offset commits made through tx apply all together when fn resolves, or not at all. */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.ensureOpen();
    this.singles.flushAll();
    return this.exchanges!.transactions.transaction(fn);
  }

  // ------------------------------------------------------------------ internals

  private managerFor(name: string): KindManager {
    return this.managerOf(this.kindOf(name));
  }

  /** What the name is; whileClosing: also once close() has begun (a batch gathered before it). */
  private kindOf(name: string, whileClosing = false): CatalogKind {
    if (!whileClosing) this.ensureOpen();
    if (typeof name !== 'string')
      throw new WharfError('INVALID_ARGUMENT', `name is ${typeof name}; pass a topic, queue or exchange name`);
    const entry = this.context.catalog.get(name);
    if (entry === undefined)
      throw new WharfError('NOT_FOUND', `no topic, queue or exchange named ${JSON.stringify(name)}; create it first`);
    return entry.kind;
  }

  private managerOf(kind: CatalogKind): KindManager {
    const manager = this.managers.get(kind);
    if (manager === undefined) throw new WharfError('UNAVAILABLE', `${kind}s are not available in this broker build`);
    return manager;
  }

  private ensureOpen(): void {
    if (this.closing !== null) throw new WharfError('CLOSED', 'the broker is closed; open it again');
  }

  private scheduleRetention(): void {
    this.retentionTimer = this.context.clock.setTimer(this.context.options.retentionCheckIntervalMs, () => {
      if (this.closing !== null) return;
      this.topics
        .applyRetention()
        .catch(() => undefined) // a failed pass is retried at the next tick
        .finally(() => {
          if (this.closing === null) this.scheduleRetention();
        });
    });
  }
}
