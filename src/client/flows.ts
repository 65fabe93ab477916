// Remote topic subscriptions and queue consumers. Each is a flow on the server (SUBSCRIBE /
// CONSUME): deliveries arrive pushed, the handler runs here, and outcomes go back batched
// (flow-settles.ts): handled, failed, or released (a delivery the handler turned away by throwing
// RELEASED, or one that reached a closing flow and no handler). After a reconnect the flow
// subscribes again; deliveries of the old connection are never settled on the new one (the
// server already failed them, so the broker redelivers: at-least-once). A flow the server ends on
// its own (FLOW_ENDED: its queue or topic was deleted), or whose resubscribe finds no queue or topic,
// stops and says why through `ended`; a problem the server's side of it keeps retrying (FLOW_ERROR)
// goes to the options' onError.
import { WharfError, isWharfError } from '../common/index.js';
import {
  DeliveryFacts,
  OP,
  decodeDeliveryInto,
  decodeEmpty,
  decodeSubscribed,
  encodeSeek,
  encodeSubscribe,
  encodeSubscriptionId,
  type Message,
  type QueueHandler,
  type QueueMessage,
  type SettleOutcome,
  type StartPosition,
  type TopicHandler,
  type TopicMessage,
  type WireReader,
} from '../protocol/index.js';
import type { ClientConnection } from './connection.js';
import { FlowSettles } from './flow-settles.js';
import type { QueueSettler } from './queue-ops.js';
import { ReaderResume } from './reader-resume.js';

export interface FlowRegistry {
  /**
   * The client's close() has begun: a flow whose SUBSCRIBED comes now is not registered (none of its
   * deliveries reaches a handler), and its subscribe or consume is closed and rejects.
   */
  readonly isClosing: boolean;
  register(serverId: number, flow: RemoteFlow): void;
  /** Forgets the flow (and its server id, if that still names it). */
  unregister(serverId: number, flow: RemoteFlow): void;
}

/** Shared by every flow: decoding is synchronous, so one instance serves all frames. */
const facts = new DeliveryFacts();

export abstract class RemoteFlow<M extends Message = Message> {
  serverId = 0;
  epoch = 0;
  protected closing = false;
  /** A resume's SUBSCRIBE is on its way, or its retry is scheduled (resume). */
  private resuming = false;

  /** Closed, or ended by the server (endedByServer). */
  get isClosing(): boolean {
    return this.closing;
  }
  /** Handlers started and not finished, plus deliveries waiting for a handler slot. */
  private running = 0;
  private idleWaiters: Array<() => void> = [];
  /** Handlers running now (at most `concurrency`). */
  private active = 0;
  /** Deliveries waiting for a handler slot: [message, deliveryId, epoch] triples, from queuedHead on. */
  private queued: Array<M | number> = [];
  private queuedHead = 0;
  private draining = false;
  /** Outcomes on their way to the server (flow-settles.ts). */
  private readonly settles: FlowSettles;
  /** Consumer.ended / Subscription.ended. */
  readonly ended: Promise<WharfError | null>;
  private settleEnded!: (reason: WharfError | null) => void;
  /** The options' onError (never sent: JSON leaves a function out), told what FLOW_ERROR says. */
  private readonly onError: ((error: WharfError) => void) | null;

  constructor(
    protected readonly conn: ClientConnection,
    protected readonly registry: FlowRegistry,
    readonly name: string,
    protected readonly wireOptions: Record<string, unknown>,
    protected readonly credits: number,
    private readonly subscribeOp: number,
    /** Handlers run at once; deliveries beyond it wait here in arrival order. */
    private readonly concurrency: number,
  ) {
    this.ended = new Promise((resolve) => (this.settleEnded = resolve));
    this.settles = new FlowSettles(conn, this);
    const onError = wireOptions.onError;
    this.onError = typeof onError === 'function' ? (onError as (error: WharfError) => void) : null;
  }

  /** SUBSCRIBE / CONSUME on the current connection. */
  async start(): Promise<void> {
    await this.conn.request(
      this.subscribeOp,
      (w) =>
        encodeSubscribe(w, {
          name: this.name,
          options: this.subscribeOptions(this.conn.hello?.version ?? 1),
          credits: this.credits,
        }),
      (_op, r) => {
        // Registered while the frame is decoded: a DELIVER may follow in the same chunk.
        const s = decodeSubscribed(r);
        this.serverId = s.subscriptionId;
        this.epoch = this.conn.epoch;
        this.onSubscribed(s.memberId, s.group, s.assignments);
        // Closed while this SUBSCRIBE was on its way (a resume), or its client began closing (a first
        // subscribe, which close() did not know of): no handler may run. Left unregistered, its
        // deliveries reach no handler and stay unsettled; resume() or the client's started()
        // unsubscribes it under the id just learnt, and the server fails them for redelivery.
        if (!this.closing && !this.registry.isClosing) this.registry.register(this.serverId, this);
      },
      false,
    );
  }

  /**
   * After a reconnect: subscribe again, retrying until it works or the flow is closed. A queue or
   * topic that is gone (NOT_FOUND) ends the flow instead: retrying would never succeed.
   */
  resume(): void {
    // One attempt at a time: a reconnect while a retry is scheduled or a SUBSCRIBE is on its way
    // must not send a second one, or the server would run two flows for this one (the other's
    // deliveries would reach no handler, and their settles would go out under this flow's id).
    if (this.closing || this.resuming) return;
    this.resuming = true;
    this.start().then(
      () => {
        this.resuming = false;
        // Closed while the resume was on its way: close() could not unsubscribe a flow the server
        // did not have yet, so it is done now, or the server would go on delivering to it.
        if (this.closing) void this.unsubscribe().catch(() => undefined);
      },
      (err: unknown) => {
        if (!this.closing && !(err instanceof WharfError && err.code === 'NOT_FOUND')) {
          // Still resuming while the retry waits. Not unref'd: an open flow keeps its process alive.
          setTimeout(() => {
            this.resuming = false;
            this.resume();
          }, 100);
          return;
        }
        this.resuming = false;
        if (!this.closing) this.endedByServer(err as WharfError);
      },
    );
  }

  /**
   * The server ended this flow (FLOW_ENDED) or refused to resume it: it stops here too. Handlers
   * still running finish; their outcomes are not sent (the server has failed those deliveries).
   */
  endedByServer(reason: WharfError): void {
    if (this.closing) return;
    this.closing = true;
    this.registry.unregister(this.serverId, this);
    this.epoch = -1; // settles send nothing for this flow from now on
    this.settleEnded(reason);
  }

  /**
   * FLOW_ERROR (version 11): the server's consumer or subscription of this flow met a problem it
   * cannot hand to a handler (a receive that failed) and keeps retrying; onError is told.
   */
  serverError(error: WharfError): void {
    if (this.closing) return;
    try {
      this.onError?.(error);
    } catch {
      // The caller's callback, run while a frame is read: its failure must not stop the connection.
    }
  }

  /** The options a SUBSCRIBE / CONSUME sends on a connection of protocol `version`. */
  protected subscribeOptions(_version: number): Record<string, unknown> {
    return this.wireOptions;
  }

  protected onSubscribed(_memberId: string, _group: string | null, _assignments: number[]): void {}

  onAssignments(_partitions: number[]): void {}

  /** A new, empty message for decodeDeliveryInto. */
  protected abstract newMessage(): M;

  /** Copies the delivery facts the handler sees onto the decoded message. */
  protected abstract applyFacts(m: M, f: DeliveryFacts): void;

  protected abstract invoke(m: M): Promise<void> | void;

  /** Its handler turned `m` away (threw RELEASED): it did not get it. */
  protected onReleased(_m: M): void {}

  /** Decodes a DELIVER body's `count` deliveries (all of them, before any handler runs), then runs them. */
  onDeliver(r: WireReader, count: number): void {
    // A delivery that arrives while close() waits for running handlers is released unhandled
    // (drain): the reader is leaving, and the server gives it back uncounted. Before version 10
    // (no released outcome) it still runs, and close() waits for it too: a manual one left
    // unsettled would be failed at UNSUBSCRIBE, a counted delivery that reached no handler. With
    // ackMode 'auto' it is acked already, so it runs. A flow closed while its resubscription was
    // on its way is never registered again (start), so nothing of it reaches here.
    const epoch = this.conn.epoch;
    const messages = new Array<M>(count);
    const ids = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const m = decodeDeliveryInto(r, this.newMessage(), facts);
      this.applyFacts(m, facts);
      messages[i] = m;
      ids[i] = facts.deliveryId;
    }
    r.done();
    for (let i = 0; i < count; i++) this.queued.push(messages[i], ids[i], epoch);
    this.running += count;
    this.drain();
  }

  /** Starts queued deliveries while handler slots are free (a loop, so synchronous handlers never recurse). */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    const q = this.queued;
    const settledByServer = this.wireOptions.ackMode === 'auto';
    while (this.active < this.concurrency && this.queuedHead < q.length) {
      const h = this.queuedHead;
      this.queuedHead += 3;
      if (!settledByServer && ((q[h + 2] as number) !== this.conn.epoch || !this.conn.isConnected)) {
        // Waiting for a slot when its connection closed: the server failed it then, and delivers it
        // again on the new connection. Running it too would handle it twice.
        this.running--;
        continue;
      }
      if (!settledByServer && this.closing && this.settles.releases) {
        // Reached a flow that is closing: the reader is leaving, so it is given back unhandled.
        this.running--;
        this.settles.report(q[h + 1] as number, q[h + 2] as number, 'released', undefined);
        continue;
      }
      this.run(q[h] as M, q[h + 1] as number, q[h + 2] as number);
    }
    this.wakeIfIdle(); // skipped deliveries may have been the last ones
    if (this.queuedHead === q.length) {
      q.length = 0;
      this.queuedHead = 0;
    } else if (this.queuedHead > 3 * 1024 && this.queuedHead * 2 > q.length) {
      q.splice(0, this.queuedHead); // a standing backlog: drop the started part now and then
      this.queuedHead = 0;
    }
    this.draining = false;
  }

  private run(m: M, deliveryId: number, epoch: number): void {
    this.active++;
    let result: Promise<void> | void;
    try {
      result = this.invoke(m);
    } catch (err) {
      this.threw(m, deliveryId, epoch, err);
      return;
    }
    if (result !== undefined && result !== null && typeof result.then === 'function') {
      result.then(
        () => this.finished(deliveryId, epoch, 'handled', undefined),
        (err: unknown) => this.threw(m, deliveryId, epoch, err),
      );
    } else {
      this.finished(deliveryId, epoch, 'handled', undefined);
    }
  }

  /** The handler threw: a failure, or a release when it threw RELEASED (it turned the delivery away). */
  private threw(m: M, deliveryId: number, epoch: number, err: unknown): void {
    const released = isWharfError(err, 'RELEASED');
    if (released) this.onReleased(m);
    this.finished(deliveryId, epoch, released ? 'released' : 'failed', err);
  }

  private finished(deliveryId: number, epoch: number, outcome: SettleOutcome, err: unknown): void {
    this.active--;
    this.running--;
    this.settles.report(deliveryId, epoch, outcome, err);
    this.drain();
    this.wakeIfIdle();
  }

  private wakeIfIdle(): void {
    if (this.running === 0) for (const f of this.idleWaiters.splice(0)) f();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      await this.unsubscribe();
    } finally {
      this.settleEnded(null);
    }
  }

  private async unsubscribe(): Promise<void> {
    // Every outcome of a handler goes out before the UNSUBSCRIBE (the frames keep their order):
    // from version 10 the server gives back uncounted what is still unsettled then, as deliveries
    // that reached no handler (a handled one whose outcome came after it would be delivered again).
    if (this.running > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    this.settles.flush();
    this.registry.unregister(this.serverId, this);
    if (!this.conn.isConnected || this.epoch !== this.conn.epoch) return; // the server already dropped it
    await this.conn
      .request(
        OP.UNSUBSCRIBE,
        (w) => encodeSubscriptionId(w, this.serverId),
        (_op, r) => decodeEmpty(r),
        false,
      )
      .catch((err: unknown) => {
        if (!(
          err instanceof WharfError &&
          (err.code === 'UNAVAILABLE' || err.code === 'CLOSED' || err.code === 'NOT_FOUND')
        ))
          throw err;
      });
  }
}

export class RemoteSubscription extends RemoteFlow<TopicMessage> {
  memberId = '';
  group: string | null = null;
  private current: number[] = [];
  /** A reader without a group resumes where its handler left off; a group member at its group's commits. */
  private readonly resumeAt: ReaderResume | null;

  constructor(
    conn: ClientConnection,
    registry: FlowRegistry,
    readonly topic: string,
    options: Record<string, unknown>,
    credits: number,
    private readonly handler: TopicHandler,
  ) {
    // Per partition the server bounds deliveries in flight (maxInFlight); credits bound the total.
    super(conn, registry, topic, options, credits, OP.SUBSCRIBE, Infinity);
    this.resumeAt = options.group === undefined || options.group === null ? new ReaderResume(options) : null;
  }

  override async start(): Promise<void> {
    await this.resumeAt?.beforeStart(this.conn, this.topic);
    await super.start();
  }

  protected override subscribeOptions(version: number): Record<string, unknown> {
    return this.resumeAt?.options(version) ?? this.wireOptions;
  }

  protected override onSubscribed(memberId: string, group: string | null, assignments: number[]): void {
    this.memberId = memberId;
    this.group = group;
    this.current = assignments;
    this.resumeAt?.subscribed();
  }

  override onAssignments(partitions: number[]): void {
    this.current = partitions;
  }

  assignments(): number[] {
    return [...this.current];
  }

  async seek(position: StartPosition): Promise<void> {
    this.checkSeekable();
    const starts = this.resumeAt === null ? null : await this.resumeAt.startsAfterSeek(this.conn, this.topic, position);
    this.checkSeekable(); // again: the connection may have changed while 'latest' was pinned
    if (starts !== null) this.resumeAt!.seeking(position, starts);
    // Not re-sent after a reconnect: it names this connection's subscription id.
    await this.conn.request(
      OP.SEEK,
      (w) => encodeSeek(w, this.serverId, position),
      (_op, r) => decodeEmpty(r),
      false,
    );
  }

  private checkSeekable(): void {
    // The server id names this flow only on the connection it subscribed on: after a reconnect,
    // until resume() subscribes again, it may name another flow of the new connection.
    if (this.isClosing) throw new WharfError('CLOSED', 'this subscription has ended; subscribe again to seek');
    if (this.epoch !== this.conn.epoch)
      throw new WharfError(
        'UNAVAILABLE',
        'this subscription is subscribing again after a reconnect; retry the seek shortly',
        { retryAfterMs: 100 },
      );
  }

  protected newMessage(): TopicMessage {
    return {
      id: '',
      type: '',
      timestamp: 0,
      key: null,
      headers: {},
      payload: null,
      topic: this.topic,
      partition: 0,
      offset: 0,
      deliveryCount: 0,
      grant: undefined,
    };
  }

  protected applyFacts(m: TopicMessage, f: DeliveryFacts): void {
    m.partition = f.partition;
    m.offset = f.offset;
    m.deliveryCount = f.deliveryCount;
    // The server sends the grant's epoch (version 8); the member and group are this flow's, from the
    // SUBSCRIBED that every delivery of the flow follows (a resubscribe names a new member).
    if (f.assignmentEpoch >= 0 && this.group !== null)
      m.grant = { group: this.group, memberId: this.memberId, assignmentEpoch: f.assignmentEpoch };
  }

  protected invoke(m: TopicMessage): Promise<void> | void {
    this.resumeAt?.handed(m.partition, m.offset, m.deliveryCount);
    return this.handler(m);
  }

  protected override onReleased(m: TopicMessage): void {
    this.resumeAt?.released(m.partition, m.offset);
  }
}

export class RemoteConsumer extends RemoteFlow<QueueMessage> {
  constructor(
    conn: ClientConnection,
    registry: FlowRegistry,
    readonly queue: string,
    options: Record<string, unknown>,
    credits: number,
    concurrency: number,
    private readonly settler: QueueSettler,
    private readonly handler: QueueHandler,
  ) {
    // Leases arrive ahead (prefetch); at most `concurrency` handlers run at once.
    super(conn, registry, queue, options, credits, OP.CONSUME, concurrency);
  }

  protected newMessage(): QueueMessage {
    return this.settler.newMessage(this.queue);
  }

  protected applyFacts(m: QueueMessage, f: DeliveryFacts): void {
    m.deliveryCount = f.deliveryCount;
    m.receipt = f.receipt;
    m.firstDeliveredAt = f.firstDeliveredAt;
  }

  protected invoke(m: QueueMessage): Promise<void> | void {
    return this.handler(m);
  }
}

export type { QueueMessage };
