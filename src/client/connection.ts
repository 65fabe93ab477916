// The client's one TCP connection: handshake, correlation ids (many requests in flight), batched
// writes (every frame produced in one turn leaves in one socket write), pings, and automatic
// reconnect with backoff. Requests marked `retry` survive a reconnect and are sent again; flows
// (subscriptions, consumers) re-subscribe through onReconnected.
import { connect as netConnect, type Socket } from 'node:net';
import { ChurnMap, WharfError, toWharfError } from '../common/index.js';
import { Liveness } from './liveness.js';
import {
  FrameDecoder,
  MIN_PROTOCOL_VERSION,
  OP,
  PROTOCOL_VERSION,
  WireReader,
  WireWriter,
  beginFrame,
  decodeError,
  decodeHelloAnswer,
  encodeHello,
  endFrame,
  opName,
  type HelloOk,
} from '../protocol/index.js';

/** Bytes one socket read takes at most. */
const READ_BUFFER_BYTES = 256 * 1024;

export interface ConnectionOptions {
  host: string;
  port: number;
  clientName: string;
  /** First reconnect delay; doubles up to reconnectMaxDelayMs. */
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
  /** Give up (fail pending requests with UNAVAILABLE) after this long without a connection. */
  reconnectTimeoutMs: number;
  /** Requests that may wait for a connection while the client is reconnecting; more fail with LIMIT_EXCEEDED. */
  maxWaitingRequests: number;
  /** One attempt (TCP connect and HELLO answered) fails after this long: a server that accepts and never answers must not hold it forever. */
  connectTimeoutMs: number;
  /** Largest frame this client accepts from the server. */
  maxFrameBytes: number;
}

interface Request {
  /** Or the op chosen when the frame is written: by the version of the connection it goes out on. */
  op: number | (() => number);
  correlationId: number;
  encode: (w: WireWriter) => void;
  /** `resent`: this request went out on a connection that was lost before it was answered, and was sent again. */
  decode: (op: number, r: WireReader, resent: boolean) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** Sent again after a reconnect (idempotent, or made so by producer sequences). */
  retry: boolean;
  /** Sent on a connection lost before the answer came, then queued to be sent again. */
  resent: boolean;
}

export type PushHandler = (op: number, r: WireReader) => void;

export class ClientConnection {
  /** Bumps on every (re)connect; deliveries remember it so they never settle on a newer connection. */
  epoch = 0;
  hello: HelloOk | null = null;
  onPush: PushHandler = () => undefined;
  /** Called after each successful reconnect (not the first connect). */
  onReconnected: () => void = () => undefined;
  private socket: Socket | null = null;
  /** The socket of a connection attempt in progress (close() ends it). */
  private dialing: Socket | null = null;
  /** The next reconnect attempt, while one is scheduled (close() cancels it). */
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly reader = new WireReader();
  private readonly out = new WireWriter(64 * 1024);
  private flushScheduled = false;
  private nextCorrelationId = 1;
  private readonly pending = new ChurnMap<number, Request>();
  /** Requests beyond the server's in-flight window, or made while disconnected. */
  private readonly waiting: Request[] = [];
  private inFlight = 0;
  private closed = false;
  private connected = false;
  private disconnectedSinceMs = 0;
  private reconnectDelayMs: number;
  /** The current connection's PINGs and whether it is alive (null while none is up, or idle timeouts are off). */
  private liveness: Liveness | null = null;

  /** The server's address, as messages name it. */
  private readonly url: string;

  constructor(private readonly options: ConnectionOptions) {
    this.url = `wharf://${options.host}:${options.port}`;
    this.reconnectDelayMs = options.reconnectInitialDelayMs;
  }

  /** Opens the first connection; rejects when the server cannot be reached or refuses us. */
  async open(): Promise<void> {
    await this.dial();
  }

  private dial(): Promise<void> {
    if (this.closed) return Promise.reject(new WharfError('CLOSED', 'the client was closed'));
    return new Promise<void>((resolve, reject) => {
      // The socket reads into one buffer of the client's (no allocation per read); the decoder
      // copies what of it must outlive the read (FrameDecoder, copyChunks).
      let decoder: FrameDecoder | null = null;
      const socket = netConnect({
        host: this.options.host,
        port: this.options.port,
        onread: {
          buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), // this connection's, read after read
          callback: (bytesRead: number, buf: Uint8Array): boolean => {
            this.liveness?.received(Date.now());
            try {
              decoder?.push((buf as Buffer).subarray(0, bytesRead));
            } catch (err) {
              this.fail(toWharfError(err));
              socket.destroy();
            }
            return true;
          },
        },
      });
      socket.setNoDelay(true);
      this.dialing = socket;
      let settled = false;
      const giveUp = setTimeout(() => {
        if (settled) return;
        settled = true;
        socket.destroy();
        reject(
          new WharfError(
            'UNAVAILABLE',
            `${this.url} did not answer the handshake within ${this.options.connectTimeoutMs} ms (connectTimeoutMs)`,
          ),
        );
      }, this.options.connectTimeoutMs);
      socket.once('close', () => {
        clearTimeout(giveUp);
        if (this.dialing === socket) this.dialing = null;
      });
      decoder = new FrameDecoder(
        this.options.maxFrameBytes,
        (op, id, buf, start, end) => {
          this.reader.reset(buf, start, end, opName(op));
          if (!settled) {
            settled = true;
            clearTimeout(giveUp);
            if (this.dialing === socket) this.dialing = null;
            if (this.closed) {
              // close() ran during the handshake: this connection is not taken up.
              socket.destroy();
              reject(new WharfError('CLOSED', 'the client was closed'));
            } else {
              // Settled already (the timeout is cleared, and a close no longer rejects): an answer
              // that cannot be read must reject here, or connect() and a reconnect wait for ever.
              const answer = decodeHelloAnswer(op, this.reader, this.url);
              if (answer instanceof WharfError) {
                socket.destroy();
                reject(answer);
              } else {
                this.hello = answer;
                this.onConnected(socket);
                resolve();
              }
            }
            return;
          }
          this.onFrame(op, id);
        },
        true, // the read buffer is reused; every frame is decoded before its handler returns
      );
      socket.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(
            new WharfError('UNAVAILABLE', `cannot reach ${this.url} (${err.message}); is the server running?`, {
              cause: err,
            }),
          );
        }
      });
      socket.on('close', () => {
        if (!settled) {
          settled = true;
          reject(new WharfError('UNAVAILABLE', `${this.url} closed the connection during the handshake`));
        }
        if (this.socket === socket) this.onDisconnected();
      });
      socket.once('connect', () => {
        const w = new WireWriter(128);
        const start = beginFrame(w, OP.HELLO, 0);
        encodeHello(w, {
          minVersion: MIN_PROTOCOL_VERSION,
          maxVersion: PROTOCOL_VERSION,
          clientName: this.options.clientName,
        });
        endFrame(w, start);
        socket.write(w.copyFrom(0));
      });
    });
  }

  private onConnected(socket: Socket): void {
    const first = this.epoch === 0;
    this.socket = socket;
    this.connected = true;
    this.epoch++;
    this.lastConnectionError = null; // it named why the previous connection closed, not this one
    this.reconnectDelayMs = this.options.reconnectInitialDelayMs;
    this.startPing();
    if (!first) this.onReconnected();
    this.pump();
  }

  private onFrame(op: number, correlationId: number): void {
    if (correlationId === 0) {
      if (op === OP.ERROR) {
        // The server is about to close this connection; the close handler reconnects.
        this.lastConnectionError = decodeError(this.reader);
        return;
      }
      this.onPush(op, this.reader);
      return;
    }
    const req = this.pending.get(correlationId);
    if (req === undefined) return; // answered after we gave up on it
    this.pending.delete(correlationId);
    this.inFlight--;
    try {
      if (op === OP.ERROR) req.reject(decodeError(this.reader));
      else req.resolve(req.decode(op, this.reader, req.resent));
    } catch (err) {
      req.reject(toWharfError(err));
    }
    this.pump();
  }

  /** The last connection-level ERROR the server sent before closing. */
  lastConnectionError: WharfError | null = null;

  /**
   * `op` may be a function: called when the frame is written, so a request made while reconnecting
   * picks its op by the version of the connection it goes out on (as `encode` may).
   */
  request<T>(
    op: number | (() => number),
    encode: (w: WireWriter) => void,
    decode: (op: number, r: WireReader, resent: boolean) => T,
    retry = true,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new WharfError('CLOSED', 'this client is closed; connect again'));
    const refused = this.waitingLimitError();
    if (refused !== null) return Promise.reject(refused);
    return new Promise<T>((resolve, reject) => {
      const req: Request = {
        op,
        correlationId: 0,
        encode,
        decode,
        resolve: resolve as (v: unknown) => void,
        reject,
        retry,
        resent: false,
      };
      this.waiting.push(req);
      this.pump();
    });
  }

  /**
   * LIMIT_EXCEEDED while reconnecting once maxWaitingRequests requests wait for the connection,
   * counting `waitingElsewhere` that wait to be made (frames the producer holds back); else null.
   */
  waitingLimitError(waitingElsewhere = 0): WharfError | null {
    const waiting = this.waiting.length + waitingElsewhere;
    if (this.connected || waiting < this.options.maxWaitingRequests) return null;
    return new WharfError(
      'LIMIT_EXCEEDED',
      `the client is reconnecting and ${waiting} requests already wait for the connection (maxWaitingRequests); retry once it is back`,
      {
        details: { limit: 'maxWaitingRequests', value: this.options.maxWaitingRequests },
      },
    );
  }

  /** A one-way frame (CREDIT, SETTLE) on the current connection; dropped when disconnected. */
  sendOneWay(op: number, encode: (w: WireWriter) => void, epoch: number): void {
    if (!this.connected || epoch !== this.epoch) return;
    const start = beginFrame(this.out, op, 0);
    encode(this.out);
    endFrame(this.out, start);
    this.scheduleFlush();
  }

  /** Moves waiting requests into the server's in-flight window. */
  private pump(): void {
    if (!this.connected) return;
    const max = this.hello?.maxInFlight ?? 1;
    while (this.waiting.length > 0 && this.inFlight < max) {
      const req = this.waiting.shift()!;
      if (req.correlationId === 0) {
        req.correlationId = this.nextCorrelationId++;
        if (this.nextCorrelationId > 0xffffffff) this.nextCorrelationId = 1;
      }
      const w = this.out;
      const mark = w.pos;
      const start = beginFrame(w, typeof req.op === 'number' ? req.op : req.op(), req.correlationId);
      try {
        req.encode(w);
      } catch (err) {
        w.pos = mark;
        req.reject(toWharfError(err));
        continue;
      }
      endFrame(w, start);
      if (w.pos - start > (this.hello?.maxFrameBytes ?? Infinity)) {
        const frameBytes = w.pos - start;
        w.pos = mark;
        req.reject(
          new WharfError(
            'MESSAGE_TOO_LARGE',
            `request of ${frameBytes} bytes is over the server's maxFrameBytes (${this.hello?.maxFrameBytes}); publish smaller batches`,
          ),
        );
        continue;
      }
      this.pending.set(req.correlationId, req);
      this.inFlight++;
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.out.pos === 0) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.pos === 0 || this.socket === null || !this.connected) {
      this.out.reset();
      return;
    }
    const bytes = this.out.take();
    this.liveness?.sent(Date.now());
    // Once written, the writer may reuse a large frame's memory (WireWriter.recycle).
    this.socket.write(bytes, () => this.out.recycle(bytes));
  }

  /** PINGs the connection just made when it is quiet, and closes it once it is found lost (Liveness). */
  private startPing(): void {
    this.stopPing();
    const idleMs = this.hello?.idleTimeoutMs ?? 0;
    const socket = this.socket;
    if (idleMs <= 0 || socket === null) return;
    this.liveness = new Liveness(idleMs, Date.now());
    this.liveness.start({
      ping: (written) =>
        this.request(
          () => (written(), OP.PING),
          () => undefined,
          () => undefined,
          false,
        ),
      lost: () => {
        this.lastConnectionError = new WharfError(
          'UNAVAILABLE',
          `${this.url} sent nothing for ${idleMs} ms after a PING (the server's idleTimeoutMs): the connection is taken as lost`,
        );
        socket.destroy();
      },
    });
  }

  private stopPing(): void {
    this.liveness?.stop();
    this.liveness = null;
  }

  private onDisconnected(): void {
    this.connected = false;
    this.socket = null;
    this.stopPing();
    this.out.reset();
    this.flushScheduled = false;
    this.disconnectedSinceMs = Date.now();
    // Requests sent on the lost connection: retry the safe ones in their original order.
    const lost = [...this.pending.values()].sort((a, b) => a.correlationId - b.correlationId);
    this.pending.clear();
    this.inFlight = 0;
    const again: Request[] = [];
    const why =
      this.lastConnectionError ??
      new WharfError(
        'UNAVAILABLE',
        'the connection to the server was lost before this request was answered: it may or may not have taken effect; check, then retry',
      );
    for (const req of lost) {
      if (req.retry) {
        req.resent = true;
        again.push(req);
      } else req.reject(why);
    }
    this.waiting.unshift(...again);
    if (this.closed) {
      this.failAll(new WharfError('CLOSED', 'the client was closed'));
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = this.reconnectDelayMs * (0.5 + Math.random() / 2);
    this.reconnectDelayMs = Math.min(this.options.reconnectMaxDelayMs, this.reconnectDelayMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed) return;
      this.dial().catch((err: unknown) => {
        if (this.closed) return;
        if (Date.now() - this.disconnectedSinceMs > this.options.reconnectTimeoutMs) {
          this.failAll(
            new WharfError(
              'UNAVAILABLE',
              `no connection to the server for ${this.options.reconnectTimeoutMs} ms (reconnectTimeoutMs): ${toWharfError(err).message}`,
            ),
          );
        }
        this.scheduleReconnect();
      });
      // Not unref'd: an open client keeps its process alive while it reconnects, as its socket did
      // while connected (a worker whose server restarts must not exit with its consumer open).
    }, delay);
  }

  private fail(err: WharfError): void {
    this.lastConnectionError = err;
  }

  private failAll(err: WharfError): void {
    for (const req of this.waiting.splice(0)) req.reject(err);
    for (const req of this.pending.values()) req.reject(err);
    this.pending.clear();
    this.inFlight = 0;
  }

  private awaitsAnswers(): boolean {
    for (const req of this.waiting) if (req.op !== OP.RECEIVE) return true;
    for (const req of this.pending.values()) if (req.op !== OP.RECEIVE) return true;
    return false;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /**
   * Waits for answers to what was sent (bounded), then closes the socket. Long polls (RECEIVE) are
   * not waited for: one may hold for its whole waitMs. Messages a receive leases after the close
   * are visible again once their visibility timeout ends, as for a client that died.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    const deadline = Date.now() + timeoutMs;
    while (this.awaitsAnswers() && this.connected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    this.closed = true;
    this.stopPing();
    this.dialing?.destroy();
    this.dialing = null;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.failAll(new WharfError('CLOSED', 'the client was closed before this request was answered'));
    const socket = this.socket;
    if (socket !== null) {
      this.flush();
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 1_000).unref();
      });
    }
  }
}
