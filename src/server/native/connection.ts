// One native-protocol connection on the server: frame decoding, the handshake gate, the in-flight
// request window, the idle timer, batched writes (all frames produced in one event-loop turn leave
// in one socket write), and the subscriptions, consumers and receipts this connection owns.
import type { Socket } from 'node:net';
import { ChurnMap, ChurnSet, WharfError, toWharfError, type Clock, type TimerHandle } from '../../common/index.js';
import {
  FLOW_ENDED_VERSION,
  FLOW_ERROR_VERSION,
  FrameDecoder,
  OP,
  ONE_WAY_OPS,
  OP_SINCE_VERSION,
  WireReader,
  WireWriter,
  beginFrame,
  encodeDelivery,
  encodeDeliverHeader,
  encodeError,
  encodeFlowEnded,
  encodeFlowError,
  endFrame,
  opName,
  type QueueMessage,
  type Wharf,
} from '../../protocol/index.js';
import { endFlow, grantCredits, type FlowState, type PendingDelivery } from './flow-state.js';
import type { ServerCounters, ServerLimits } from './limits.js';
import type { ReceiveAttempts } from '../receive-attempts.js';
import { encodeStoredDelivery } from './stored-delivery.js';

/** One op's handler: decodes its body synchronously from `r`, then may await. */
export type OpHandler = (conn: Connection, r: WireReader, correlationId: number) => void | Promise<void>;
export type DispatchTable = ReadonlyMap<number, OpHandler>;

export class Connection {
  readonly reader = new WireReader();
  readonly flows = new Map<number, FlowState>();
  /** Receipts of queue messages leased to this connection, for ACK / NACK / EXTEND. */
  readonly receipts = new ChurnMap<string, QueueMessage>();
  nextFlowId = 1;
  private readonly decoder: FrameDecoder;
  private readonly out = new WireWriter(64 * 1024);
  private flushScheduled = false;
  private awaitingDrain = false;
  private flowsToFlush = new ChurnSet<FlowState>();
  private inFlight = 0;
  private helloDone = false;
  /** The version HELLO settled on; 0 before it. */
  private negotiatedVersion = 0;
  private closed = false;
  private idleTimer: TimerHandle | null = null;
  private lastActivityMs: number;
  private readonly drained: Array<() => void> = [];

  constructor(
    readonly socket: Socket,
    readonly broker: Wharf,
    readonly limits: ServerLimits,
    private readonly table: DispatchTable,
    private readonly counters: ServerCounters,
    private readonly clock: Clock,
    /** Shared by the server's connections: a retried RECEIVE comes on a new one. */
    readonly receiveAttempts: ReceiveAttempts<Buffer>,
    private readonly onClosed: (c: Connection) => void,
  ) {
    this.decoder = new FrameDecoder(limits.maxFrameBytes, (op, id, buf, start, end) =>
      this.onFrame(op, id, buf, start, end),
    );
    this.lastActivityMs = clock.now();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.teardown());
    socket.on('close', () => this.teardown());
    this.armIdle();
  }

  get isHandshaken(): boolean {
    return this.helloDone;
  }

  /** The protocol version HELLO settled on (0 before it). */
  get protocolVersion(): number {
    return this.negotiatedVersion;
  }

  markHandshaken(version: number): void {
    this.helloDone = true;
    this.negotiatedVersion = version;
  }

  get inFlightRequests(): number {
    return this.inFlight;
  }

  private onData(chunk: Buffer): void {
    this.counters.bytesIn += chunk.length;
    this.lastActivityMs = this.clock.now();
    try {
      this.decoder.push(chunk);
    } catch (err) {
      // A bad length or an oversized frame: the stream cannot be resynchronised.
      this.fatal(toWharfError(err));
    }
  }

  private onFrame(op: number, correlationId: number, buf: Buffer, start: number, end: number): void {
    if (this.closed) return;
    this.counters.framesIn++;
    if (!this.helloDone && op !== OP.HELLO) {
      this.fatal(
        new WharfError(
          'PROTOCOL_ERROR',
          `first frame was ${opName(op)}; a connection must start with HELLO (docs/protocol.md)`,
        ),
      );
      return;
    }
    const handler = this.table.get(op);
    if (handler === undefined) {
      const e = new WharfError(
        'PROTOCOL_ERROR',
        `unknown op ${opName(op)}; this server speaks the ops listed in docs/protocol.md`,
      );
      // Answered on its correlation id; on id 0 that answer is an ERROR on 0, which ends the
      // connection (section 4), so it does end it.
      if (correlationId === 0) this.fatal(e);
      else this.replyError(correlationId, e);
      return;
    }
    const oneWay = ONE_WAY_OPS.has(op);
    if (!oneWay && correlationId === 0 && op !== OP.HELLO) {
      // 0 marks pushes and connection-level errors: an answer on it could not be told from one.
      // (HELLO is exempt: nothing is pushed before its answer, and clients have sent it with 0.)
      this.fatal(
        new WharfError(
          'PROTOCOL_ERROR',
          `request ${opName(op)} has correlation id 0; requests carry a non-zero id, unique among the client's outstanding requests (docs/protocol.md section 2)`,
        ),
      );
      return;
    }
    const since = OP_SINCE_VERSION.get(op);
    if (since !== undefined && since > this.negotiatedVersion) {
      // Not an op of this connection's version. A request gets its error; a one-way op has no
      // request to answer, so (like a malformed one) it ends the connection.
      const e = new WharfError(
        'PROTOCOL_ERROR',
        `op ${opName(op)} needs protocol version ${since}; this connection negotiated ${this.negotiatedVersion}`,
      );
      if (oneWay) this.fatal(e);
      else this.replyError(correlationId, e);
      return;
    }
    if (!oneWay && this.inFlight >= this.limits.maxInFlightRequests) {
      this.replyError(
        correlationId,
        new WharfError(
          'LIMIT_EXCEEDED',
          `more than ${this.limits.maxInFlightRequests} requests in flight on this connection (maxInFlightRequests); wait for responses before sending more`,
          {
            details: { limit: 'maxInFlightRequests', value: this.limits.maxInFlightRequests },
          },
        ),
      );
      return;
    }
    this.reader.reset(buf, start, end, opName(op));
    if (!oneWay) this.inFlight++;
    let result: void | Promise<void>;
    try {
      result = handler(this, this.reader, correlationId);
    } catch (err) {
      if (!oneWay) this.inFlight--;
      this.onHandlerError(correlationId, oneWay, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        () => this.requestDone(oneWay),
        (err: unknown) => {
          this.requestDone(oneWay);
          this.onHandlerError(correlationId, oneWay, err);
        },
      );
    } else {
      this.requestDone(oneWay);
    }
  }

  private requestDone(oneWay: boolean): void {
    if (oneWay) return;
    this.inFlight--;
    if (this.inFlight === 0) for (const f of this.drained.splice(0)) f();
  }

  private onHandlerError(correlationId: number, oneWay: boolean, err: unknown): void {
    const e = toWharfError(err);
    // A one-way op has no request to answer: a malformed one ends the connection.
    if (oneWay) this.fatal(e);
    else this.replyError(correlationId, e);
  }

  /** Appends one response/push frame to the outgoing buffer; it leaves with this turn's write. */
  send(op: number, correlationId: number, body?: (w: WireWriter) => void): void {
    if (this.closed) return;
    const w = this.out;
    const mark = w.pos;
    const start = beginFrame(w, op, correlationId);
    try {
      body?.(w);
    } catch (err) {
      w.pos = mark;
      if (op !== OP.ERROR) this.replyError(correlationId, toWharfError(err));
      return;
    }
    endFrame(w, start);
    this.counters.framesOut++;
    this.scheduleFlush();
  }

  replyError(correlationId: number, err: WharfError): void {
    this.send(OP.ERROR, correlationId, (w) => encodeError(w, err));
  }

  /** Queues a delivery on a flow; all deliveries of one turn leave as one DELIVER frame per flow. */
  deliver(flow: FlowState, d: PendingDelivery): void {
    if (flow.batch.push(d) === 1) this.flowsToFlush.add(flow);
    this.scheduleFlush();
  }

  /**
   * The broker ended a flow on its own (its queue or topic was deleted), after endFlow: deliveries
   * not yet written are dropped (endFlow failed them), and a client of version 3 or later is told
   * with FLOW_ENDED; an older one is not (its flow just stops).
   */
  flowEnded(flow: FlowState, reason: WharfError): void {
    flow.batch.length = 0;
    this.flowsToFlush.delete(flow);
    if (this.closed || this.negotiatedVersion < FLOW_ENDED_VERSION) return;
    this.send(OP.FLOW_ENDED, 0, (w) => encodeFlowEnded(w, flow.id, reason));
  }

  /**
   * The broker's consumer or subscription of a flow met a problem it cannot hand to a handler (a
   * receive that failed: its onError) and keeps retrying: a client of version 11 or later is told
   * with FLOW_ERROR, after SUBSCRIBED; an older one is not (the queue's stats count it). As often
   * as the broker reports, which it does once per retry, after a backoff.
   */
  flowError(flow: FlowState, err: WharfError): void {
    if (this.closed || this.negotiatedVersion < FLOW_ERROR_VERSION) return;
    if (flow.closedBecause !== null || this.flows.get(flow.id) !== flow) return; // ended: nobody to tell
    if (!flow.ready) {
      flow.heldError = err; // the client learns the flow's id from SUBSCRIBED: sent after it
      return;
    }
    this.send(OP.FLOW_ERROR, 0, (w) => encodeFlowError(w, flow.id, err));
  }

  /** Marks a flow subscribed (after its SUBSCRIBED frame was queued) and releases held deliveries. */
  flowReady(flow: FlowState): void {
    flow.ready = true;
    if (flow.heldError !== undefined) {
      const err = flow.heldError;
      flow.heldError = undefined;
      this.flowError(flow, err);
    }
    if (flow.batch.length > 0) {
      this.flowsToFlush.add(flow);
      this.scheduleFlush();
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    for (const flow of this.flowsToFlush) {
      if (!flow.ready) continue;
      this.encodeDeliveries(flow);
      this.flowsToFlush.delete(flow);
    }
    if (this.out.pos === 0) return;
    const bytes = this.out.take();
    this.counters.bytesOut += bytes.length;
    // Once written, the writer may reuse a large frame's memory (WireWriter.recycle).
    if (!this.socket.write(bytes, () => this.out.recycle(bytes)) && !this.awaitingDrain) {
      // The peer reads slower than we answer: stop reading requests until the socket drains.
      this.awaitingDrain = true;
      this.socket.pause();
      this.socket.once('drain', () => {
        this.awaitingDrain = false;
        if (!this.closed) this.socket.resume();
      });
    }
  }

  /**
   * Writes a flow's queued deliveries as DELIVER frames of at most 65,535 deliveries and, unless a
   * frame holds one delivery only, at most maxResponseFrameBytes: a client refuses a frame over its
   * own limit, and a frame of many large messages would pass it.
   */
  private encodeDeliveries(flow: FlowState): void {
    const batch = flow.batch;
    let i = 0;
    while (i < batch.length) {
      const count = Math.min(0xffff, batch.length - i);
      const w = this.out;
      const mark = w.pos;
      const start = beginFrame(w, OP.DELIVER, 0);
      const countAt = w.pos + 4; // the u16 count after the u32 subscription id
      encodeDeliverHeader(w, flow.id, count);
      let written = 0;
      for (let k = 0; k < count; k++, i++) {
        const d = batch[i];
        const at = w.pos;
        try {
          if (d.record !== null) {
            encodeStoredDelivery(w, d.record, d, d.lease);
          } else if (d.message !== null) encodeDelivery(w, d.message, d);
          else throw new WharfError('INTERNAL', 'invariant violated: a delivery with neither a message nor a record');
          if (written > 0 && w.pos - mark > this.limits.maxResponseFrameBytes) {
            w.pos = at; // written again as the next frame's first
            break;
          }
          if (d.record !== null) {
            // Written: an in-flight delivery need not hold its record's objects until it settles.
            d.record = null;
            d.lease?.releaseRecord();
          }
          written++;
        } catch (err) {
          w.pos = at;
          this.undeliverable(flow, d, toWharfError(err));
        }
      }
      if (written === 0) {
        w.pos = mark;
        continue;
      }
      w.buf.writeUInt16BE(written, countAt);
      endFrame(w, start);
      this.counters.framesOut++;
    }
    batch.length = 0;
  }

  /**
   * A delivery the protocol cannot carry (a stored field longer than a u16 string holds): it fails
   * as a handler failure would (the broker retries it, then dead-letters it), its credit is given
   * back, and the connection goes on. Thrown from flush(), it would have ended the process.
   */
  private undeliverable(flow: FlowState, d: PendingDelivery, err: WharfError): void {
    flow.pending.delete(d.deliveryId);
    grantCredits(flow, 1);
    d.settleFailed(new WharfError(err.code, `the message cannot be sent over the native protocol: ${err.message}`));
  }

  /** Sends ERROR (correlation id 0) and closes this connection only. */
  fatal(err: WharfError): void {
    if (this.closed) return;
    this.replyError(0, err);
    this.flush();
    this.counters.connectionErrors++;
    this.socket.end();
    // A peer that never reads must not keep the socket open.
    this.clock.setTimer(1_000, () => this.socket.destroy());
    this.teardown();
  }

  private armIdle(): void {
    const idleMs = this.limits.idleTimeoutMs;
    if (idleMs <= 0) return;
    const check = (): void => {
      if (this.closed) return;
      const silentMs = this.clock.now() - this.lastActivityMs;
      // Requests in flight do not keep a silent connection: a client waiting for an answer PINGs
      // too (§3), and one that does not is gone. Exempt, a dead client's request waiting for room
      // in a full queue kept its connection, and this check re-armed every millisecond.
      if (silentMs >= idleMs) {
        this.fatal(
          new WharfError(
            'TIMEOUT',
            `connection idle for ${silentMs} ms (idleTimeoutMs ${idleMs}); clients should PING at least every ${Math.floor(idleMs / 3)} ms`,
          ),
        );
        return;
      }
      this.idleTimer = this.clock.setTimer(idleMs - silentMs, check); // > 0: silentMs < idleMs here
    };
    this.idleTimer = this.clock.setTimer(idleMs, check);
  }

  /** Resolves when no request of this connection is being served. */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Releases everything this connection holds; unsettled deliveries fail so the broker retries them. */
  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    this.idleTimer?.cancel();
    const gone = new WharfError('CLOSED', 'the client connection closed before settling this delivery');
    const flows = [...this.flows.values()];
    this.flows.clear();
    for (const flow of flows) endFlow(flow, gone).catch(() => undefined);
    this.receipts.clear();
    for (const f of this.drained.splice(0)) f();
    this.onClosed(this);
  }

  /** Graceful end: answers what is in flight (bounded by timeoutMs), then closes. */
  async end(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    this.socket.pause();
    await Promise.race([this.whenIdle(), new Promise<void>((r) => this.clock.setTimer(timeoutMs, r))]);
    this.flush();
    this.socket.end();
    // Read again so the peer's FIN is seen and the socket closes; frames now arriving are ignored
    // (the client re-sends unanswered requests after reconnecting).
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), timeoutMs).unref();
    this.teardown();
  }
}
