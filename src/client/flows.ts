// Remote topic subscriptions and queue consumers. Each is a flow on the server (SUBSCRIBE /
// CONSUME): deliveries arrive pushed, the handler runs here, its outcome goes back as SETTLE and
// the spent credit is granted again. After a reconnect the flow subscribes again; deliveries of
// the old connection are never settled on the new one (the server already failed them, so the
// broker redelivers: at-least-once).
import { WharfError, toWharfError } from '../common/index.js';
import {
  OP,
  decodeEmpty,
  decodeSubscribed,
  encodeCredit,
  encodeSeek,
  encodeSettle,
  encodeSubscribe,
  encodeSubscriptionId,
  type DecodedDelivery,
  type QueueHandler,
  type QueueMessage,
  type StartPosition,
  type TopicHandler,
  type TopicMessage,
} from '../protocol/index.js';
import type { ClientConnection } from './connection.js';
import type { QueueSettler } from './queue-ops.js';

export interface FlowRegistry {
  register(serverId: number, flow: RemoteFlow): void;
  unregister(serverId: number): void;
}

export abstract class RemoteFlow {
  serverId = 0;
  epoch = 0;
  protected closing = false;
  private running = 0;
  private idleWaiters: Array<() => void> = [];
  private creditsToGrant = 0;
  private creditFlushQueued = false;

  constructor(
    protected readonly conn: ClientConnection,
    protected readonly registry: FlowRegistry,
    readonly name: string,
    protected readonly wireOptions: Record<string, unknown>,
    protected readonly credits: number,
    private readonly subscribeOp: number,
  ) {}

  /** SUBSCRIBE / CONSUME on the current connection. */
  async start(): Promise<void> {
    await this.conn.request(
      this.subscribeOp,
      (w) => encodeSubscribe(w, { name: this.name, options: this.wireOptions, credits: this.credits }),
      (_op, r) => {
        // Registered while the frame is decoded: a DELIVER may follow in the same chunk.
        const s = decodeSubscribed(r);
        this.serverId = s.subscriptionId;
        this.epoch = this.conn.epoch;
        this.onSubscribed(s.memberId, s.group, s.assignments);
        this.registry.register(this.serverId, this);
      },
      false,
    );
  }

  /** After a reconnect: subscribe again, retrying until it works or the flow is closed. */
  resume(): void {
    if (this.closing) return;
    this.start().catch(() => {
      if (!this.closing) setTimeout(() => this.resume(), 100).unref();
    });
  }

  protected onSubscribed(_memberId: string, _group: string | null, _assignments: number[]): void {}

  onAssignments(_partitions: number[]): void {}

  onDeliveries(deliveries: DecodedDelivery[]): void {
    const epoch = this.conn.epoch;
    for (const d of deliveries) {
      this.running++;
      this.run(d, epoch).then(
        () => this.settle(d.deliveryId, epoch, true, ''),
        (err: unknown) => this.settle(d.deliveryId, epoch, false, toWharfError(err).message),
      );
    }
  }

  protected abstract run(d: DecodedDelivery, epoch: number): Promise<void>;

  private settle(deliveryId: number, epoch: number, ok: boolean, error: string): void {
    const serverId = this.serverId;
    this.conn.sendOneWay(OP.SETTLE, (w) => encodeSettle(w, { subscriptionId: serverId, deliveryId, ok, error }), epoch);
    if (epoch === this.conn.epoch && epoch === this.epoch) this.grant(1);
    if (--this.running === 0) for (const f of this.idleWaiters.splice(0)) f();
  }

  /** Credits go back in one CREDIT frame per turn. */
  private grant(n: number): void {
    this.creditsToGrant += n;
    if (this.creditFlushQueued) return;
    this.creditFlushQueued = true;
    queueMicrotask(() => {
      this.creditFlushQueued = false;
      const credits = this.creditsToGrant;
      this.creditsToGrant = 0;
      const serverId = this.serverId;
      if (credits > 0 && !this.closing) this.conn.sendOneWay(OP.CREDIT, (w) => encodeCredit(w, serverId, credits), this.epoch);
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.running > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    this.registry.unregister(this.serverId);
    if (!this.conn.isConnected || this.epoch !== this.conn.epoch) return; // the server already dropped it
    await this.conn
      .request(OP.UNSUBSCRIBE, (w) => encodeSubscriptionId(w, this.serverId), (_op, r) => decodeEmpty(r), false)
      .catch((err: unknown) => {
        if (!(err instanceof WharfError && (err.code === 'UNAVAILABLE' || err.code === 'CLOSED' || err.code === 'NOT_FOUND'))) throw err;
      });
  }
}

export class RemoteSubscription extends RemoteFlow {
  memberId = '';
  group: string | null = null;
  private current: number[] = [];

  constructor(
    conn: ClientConnection,
    registry: FlowRegistry,
    readonly topic: string,
    options: Record<string, unknown>,
    credits: number,
    private readonly handler: TopicHandler,
  ) {
    super(conn, registry, topic, options, credits, OP.SUBSCRIBE);
  }

  protected override onSubscribed(memberId: string, group: string | null, assignments: number[]): void {
    this.memberId = memberId;
    this.group = group;
    this.current = assignments;
  }

  override onAssignments(partitions: number[]): void {
    this.current = partitions;
  }

  assignments(): number[] {
    return [...this.current];
  }

  async seek(position: StartPosition): Promise<void> {
    await this.conn.request(OP.SEEK, (w) => encodeSeek(w, this.serverId, position), (_op, r) => decodeEmpty(r));
  }

  protected async run(d: DecodedDelivery): Promise<void> {
    const m = d.message as TopicMessage;
    m.topic = this.topic;
    m.partition = d.partition;
    m.offset = d.offset;
    m.deliveryCount = d.deliveryCount;
    await this.handler(m);
  }
}

export class RemoteConsumer extends RemoteFlow {
  private active = 0;
  private readonly queued: Array<() => void> = [];

  constructor(
    conn: ClientConnection,
    registry: FlowRegistry,
    readonly queue: string,
    options: Record<string, unknown>,
    credits: number,
    private readonly concurrency: number,
    private readonly settler: QueueSettler,
    private readonly handler: QueueHandler,
  ) {
    super(conn, registry, queue, options, credits, OP.CONSUME);
  }

  protected async run(d: DecodedDelivery): Promise<void> {
    // Leases arrive ahead (prefetch); at most `concurrency` handlers run at once.
    if (this.active >= this.concurrency) await new Promise<void>((r) => this.queued.push(r));
    this.active++;
    try {
      await this.handler(this.settler.toQueueMessage(this.queue, d));
    } finally {
      this.active--;
      this.queued.shift()?.();
    }
  }
}

export type { QueueMessage };
