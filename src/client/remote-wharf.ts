// The remote client: implements interface Wharf over one native-protocol connection, so the same
// code runs embedded or remote. Admin calls are requests; publish goes through the batching,
// idempotent Producer; subscribe/consume are server-pushed flows that resume after a reconnect.
import { LIMITS, WharfError, checkOptionFields, checkOptionObject } from '../common/index.js';
import { RECEIVE_OPTION_FIELDS, collectTransaction, checkConsumeLimits, checkReceiveLimits } from '../broker/index.js';
import {
  MIN_PROTOCOL_VERSION,
  OP,
  TRANSACTION_VERSION,
  decodeAssignments,
  decodeFlowEnded,
  decodeFlowError,
  decodeDeliverHeader,
  decodeEmpty,
  decodeJsonResult,
  encodeTransaction,
  type BindingInfo,
  type BindingOptions,
  type BindingTarget,
  type ConsumeOptions,
  type ExchangeInfo,
  type ExchangeOptions,
  type Consumer,
  type MessageInput,
  type PublishResult,
  type QueueHandler,
  type QueueInfo,
  type QueueMessage,
  type QueueOptions,
  type ReceiveOptions,
  type RedriveOptions,
  type Stats,
  type SubscribeOptions,
  type Subscription,
  type TopicHandler,
  type TopicInfo,
  type TopicOptions,
  type Transaction,
  type Wharf,
  type WireReader,
} from '../protocol/index.js';
import type { ClientConnection } from './connection.js';
import { RemoteConsumer, RemoteSubscription, type FlowRegistry, type RemoteFlow } from './flows.js';
import { nameEncoder, readByName } from './name-requests.js';
import { Producer, type ProducerOptions } from './producer.js';
import { QueueSettler } from './queue-ops.js';

export interface FlowOptions {
  /** Credits a topic subscription grants the server (deliveries outstanding at most). */
  subscribeCredits: number;
}

/**
 * Options as sent: undefined = the defaults; null, an array or a non-object is refused here, as
 * embedded (the server reads a JSON null as the defaults). Unknown fields are the server's to refuse.
 */
function asObject(v: unknown, what: string, example: string): Record<string, unknown> {
  if (v === undefined) return {};
  checkOptionObject(v, what, example);
  return v as Record<string, unknown>;
}

/** onError stays here, told what FLOW_ERROR says: JSON would send any other value, which the server refuses. */
function checkOnError(options: { onError?: unknown }, what: 'consume' | 'subscribe'): void {
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new WharfError('INVALID_ARGUMENT', `${what} onError must be a function (err: WharfError) => void`);
}

export class RemoteWharf implements Wharf, FlowRegistry {
  private readonly flows = new Map<number, RemoteFlow>();
  private readonly allFlows = new Set<RemoteFlow>();
  private readonly producer: Producer;
  private readonly queues: QueueSettler;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly conn: ClientConnection,
    producerOptions: ProducerOptions,
    private readonly flowOptions: FlowOptions,
  ) {
    this.producer = new Producer(conn, producerOptions);
    this.queues = new QueueSettler(conn);
    conn.onPush = (op, r) => this.onPush(op, r);
    conn.onReconnected = () => {
      this.flows.clear();
      for (const f of this.allFlows) f.resume();
    };
  }

  /** This client's idempotent producer id (for logs and dedupe inspection). */
  get producerId(): string {
    return this.producer.producerId;
  }

  private onPush(op: number, r: WireReader): void {
    if (op === OP.DELIVER) {
      const { subscriptionId, count } = decodeDeliverHeader(r);
      this.flows.get(subscriptionId)?.onDeliver(r, count);
    } else if (op === OP.ASSIGNMENTS) {
      const { subscriptionId, partitions } = decodeAssignments(r);
      this.flows.get(subscriptionId)?.onAssignments(partitions);
    } else if (op === OP.FLOW_ENDED) {
      const { subscriptionId, reason } = decodeFlowEnded(r);
      this.flows.get(subscriptionId)?.endedByServer(reason);
    } else if (op === OP.FLOW_ERROR) {
      const { subscriptionId, error } = decodeFlowError(r);
      this.flows.get(subscriptionId)?.serverError(error);
    }
  }

  /**
   * Starts a flow and keeps it for resubscribing after reconnects, unless it has ended already
   * (a FLOW_ENDED can arrive in the same chunk as its SUBSCRIBED, before start() returns). One
   * whose SUBSCRIBED came once close() had begun was not among the flows close() closes, and no
   * handler of it has run (start): it is unsubscribed, and the caller gets CLOSED, as a call made
   * after close() does.
   */
  private async started(flow: RemoteFlow): Promise<void> {
    await flow.start();
    if (this.closing !== null) {
      await flow.close();
      throw new WharfError('CLOSED', 'this client was closed before the subscription started; connect again');
    }
    if (!flow.isClosing) this.allFlows.add(flow);
  }

  get isClosing(): boolean {
    return this.closing !== null;
  }

  register(serverId: number, flow: RemoteFlow): void {
    this.flows.set(serverId, flow);
  }

  unregister(serverId: number, flow: RemoteFlow): void {
    if (this.flows.get(serverId) === flow) this.flows.delete(serverId);
    this.allFlows.delete(flow);
  }

  private ensureOpen(): void {
    if (this.closing !== null) throw new WharfError('CLOSED', 'this client is closed; connect again');
  }

  /**
   * An admin change (create, delete, purge, redrive, bind, unbind). Not sent again when the
   * connection is lost before its answer: it may have taken effect, and doing it twice would answer
   * ALREADY_EXISTS or NOT_FOUND, or purge or move messages that came after it. It fails with
   * UNAVAILABLE instead, and the caller checks. Reads (read, list) are sent again.
   */
  private change<T>(op: number, name: string, options?: unknown): Promise<T> {
    this.ensureOpen();
    return this.conn.request(op, nameEncoder(name, options), (_op, r) => decodeJsonResult(r) as T, false);
  }

  /** A read by name (describe, stats, bindings): safe to send again after a reconnect. */
  private read<T>(op: number, name: string): Promise<T> {
    this.ensureOpen();
    return readByName(this.conn, op, name);
  }

  /** A delete (a change: see change). */
  private ok(op: number, name: string): Promise<void> {
    this.ensureOpen();
    return this.conn.request(op, nameEncoder(name, undefined), (_op, r) => decodeEmpty(r), false);
  }

  private list<T>(op: number): Promise<T> {
    this.ensureOpen();
    return this.conn.request(
      op,
      () => undefined,
      (_op, r) => decodeJsonResult(r) as T,
      true,
    );
  }

  // ---------------------------------------------------------------- core

  publish(name: string, message: MessageInput): Promise<PublishResult>;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  publish(name: string, input: MessageInput | MessageInput[]): Promise<PublishResult | PublishResult[]> {
    if (this.closing !== null) return Promise.reject(new WharfError('CLOSED', 'this client is closed; connect again'));
    if (Array.isArray(input)) {
      // Single publishes of this tick still waiting in their batch go first: calls are stored in
      // the order they were made, as embedded.
      this.producer.flushTarget(name);
      // An empty batch stores nothing, and one over maxBatchMessages is refused (LIMIT_EXCEEDED), but
      // either names a target that must exist: NOT_FOUND comes first, as embedded.
      if (typeof name === 'string') {
        if (input.length === 0) return this.stats(name).then(() => []);
        if (input.length > LIMITS.maxBatchMessages)
          return this.stats(name).then(() => this.producer.publishMany(name, input));
      }
      return this.producer.publishMany(name, input);
    }
    return this.producer.publishOne(name, input);
  }

  stats(name: string): Promise<Stats> {
    return this.read(OP.STATS, name);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.producer.flushAll();
      await Promise.allSettled([...this.allFlows].map((f) => f.close()));
      await this.conn.close();
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- topics

  async createTopic(name: string, options?: TopicOptions): Promise<TopicInfo> {
    return this.change(OP.CREATE_TOPIC, name, asObject(options, 'topic option', '{ partitions: 3 }'));
  }

  deleteTopic(name: string): Promise<void> {
    return this.ok(OP.DELETE_TOPIC, name);
  }

  listTopics(): Promise<TopicInfo[]> {
    return this.list(OP.LIST_TOPICS);
  }

  describeTopic(name: string): Promise<TopicInfo> {
    return this.read(OP.DESCRIBE_TOPIC, name);
  }

  async subscribe(topic: string, options: SubscribeOptions, handler: TopicHandler): Promise<Subscription> {
    this.ensureOpen();
    if (typeof handler !== 'function')
      throw new WharfError('INVALID_ARGUMENT', 'subscribe needs a handler function as its third argument');
    const o = asObject(options, 'subscribe option', "{ group: 'billing' }");
    checkOnError(o, 'subscribe');
    const sub = new RemoteSubscription(this.conn, this, topic, o, this.flowOptions.subscribeCredits, handler);
    await this.started(sub);
    return sub;
  }

  // ---------------------------------------------------------------- queues

  async createQueue(name: string, options?: QueueOptions): Promise<QueueInfo> {
    return this.change(OP.CREATE_QUEUE, name, asObject(options, 'queue option', '{ visibilityTimeoutMs: 30000 }'));
  }

  deleteQueue(name: string): Promise<void> {
    return this.ok(OP.DELETE_QUEUE, name);
  }

  purgeQueue(name: string): Promise<number> {
    return this.change(OP.PURGE_QUEUE, name);
  }

  listQueues(): Promise<QueueInfo[]> {
    return this.list(OP.LIST_QUEUES);
  }

  describeQueue(name: string): Promise<QueueInfo> {
    return this.read(OP.DESCRIBE_QUEUE, name);
  }

  async receive(queue: string, options?: ReceiveOptions): Promise<QueueMessage[]> {
    this.ensureOpen();
    // RECEIVE carries max, waitMs and visibilityTimeoutMs as numbers: another field would be lost on
    // the wire, so it is refused here, as the server would.
    if (options !== undefined)
      checkOptionFields(options, RECEIVE_OPTION_FIELDS, 'receive option', '{ max: 10, waitMs: 1000 }');
    // Checked here, as embedded checks them: on the wire a fraction or a number past 2^32 would not
    // fit its u32 field, and visibilityTimeoutMs 0 means the queue's own.
    try {
      checkReceiveLimits(options ?? {});
    } catch (err) {
      await this.describeQueue(queue); // a queue that does not exist is NOT_FOUND first, as embedded
      throw err;
    }
    return this.queues.receive(queue, options);
  }

  /**
   * Hands a received message back by its receipt, visible again at once and without counting the
   * delivery toward maxDeliveries, as Broker.releaseReceipt does: for a caller that received a
   * message it will not handle (a command whose output closed). Against a server of protocol
   * version 5 or older it is nacked with no delay instead, which counts the delivery.
   */
  async releaseReceipt(queue: string, receipt: string): Promise<void> {
    this.ensureOpen();
    return this.queues.release(queue, receipt);
  }

  async consume(queue: string, options: ConsumeOptions, handler: QueueHandler): Promise<Consumer> {
    this.ensureOpen();
    if (typeof handler !== 'function')
      throw new WharfError('INVALID_ARGUMENT', 'consume needs a handler function as its third argument');
    const o = asObject(options, 'consume option', '{ concurrency: 4 }') as ConsumeOptions;
    checkOnError(o, 'consume');
    // The ranges the broker's consumer takes, checked here as embedded checks them: the server runs
    // its consumer with the credits (at most maxConsumeConcurrency), not with these numbers.
    const { concurrency, prefetch: credits } = checkConsumeLimits(o);
    const consumer = new RemoteConsumer(
      this.conn,
      this,
      queue,
      o as Record<string, unknown>,
      credits,
      concurrency,
      this.queues,
      handler,
    );
    await this.started(consumer);
    return consumer;
  }

  async redrive(deadLetterQueue: string, options?: RedriveOptions): Promise<number> {
    return this.change(OP.REDRIVE, deadLetterQueue, asObject(options, 'redrive option', "{ to: 'orders', max: 100 }"));
  }

  // ---------------------------------------------------------------- exchanges

  async createExchange(name: string, options: ExchangeOptions): Promise<ExchangeInfo> {
    return this.change(
      OP.CREATE_EXCHANGE,
      name,
      asObject(options, 'exchange option', "{ type: 'direct' | 'fanout' | 'topic' | 'headers' }"),
    );
  }

  deleteExchange(name: string): Promise<void> {
    return this.ok(OP.DELETE_EXCHANGE, name);
  }

  listExchanges(): Promise<ExchangeInfo[]> {
    return this.list(OP.LIST_EXCHANGES);
  }

  describeExchange(name: string): Promise<ExchangeInfo> {
    return this.read(OP.DESCRIBE_EXCHANGE, name);
  }

  bind(exchange: string, target: BindingTarget, options?: BindingOptions): Promise<BindingInfo> {
    return this.change(OP.BIND, exchange, { target, options });
  }

  async unbind(exchange: string, target: BindingTarget, options?: BindingOptions): Promise<void> {
    await this.change(OP.UNBIND, exchange, { target, options });
  }

  listBindings(exchange?: string): Promise<BindingInfo[]> {
    return this.read(OP.LIST_BINDINGS, exchange ?? '');
  }

  // ---------------------------------------------------------------- transactions

  /**
   * Runs fn; if it resolves, its acks, publishes and offset commits are sent as one TRANSACTION
   * request (protocol version 7; version 8 for an offset commit fenced by a grant) that the server
   * commits all or nothing, as Broker.transaction does; if it throws, nothing is sent. Collected
   * with the embedded broker's own collector, so the same misuse fails with the same error codes.
   * Publishes this client made before it are sent before it, or right after the shared frame their
   * target waits for (Producer). Await them first where their order against the transaction's
   * outputs matters, as embedded. Not sent again after a lost connection (it may have committed):
   * it fails with UNAVAILABLE, as an ACK would.
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.ensureOpen();
    const { tx, value } = await collectTransaction(fn);
    if (tx.isEmpty) return value;
    this.ensureOpen();
    this.producer.flushAll();
    const request = {
      acks: [...tx.acks.values()],
      publishes: tx.publishes,
      offsets: [...tx.offsets.values()],
    };
    await this.conn.request(
      OP.TRANSACTION,
      (w) => {
        const version = this.conn.hello?.version ?? MIN_PROTOCOL_VERSION;
        if (version < TRANSACTION_VERSION)
          throw new WharfError(
            'PROTOCOL_ERROR',
            `the server speaks protocol version ${version}; transactions need version ${TRANSACTION_VERSION} or later: upgrade the server`,
          );
        // Below version 8 a fenced commit is refused here (PROTOCOL_ERROR), never sent without its fence.
        encodeTransaction(w, request, version);
      },
      (_op, r) => decodeEmpty(r),
      false,
    );
    return value;
  }
}
