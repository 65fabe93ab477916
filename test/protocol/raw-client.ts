// A raw native-protocol socket for tests: send arbitrary bytes, read decoded frames.
import { connect, type Socket } from 'node:net';
import { expect } from 'vitest';
import * as P from '../../src/protocol/index.js';

export interface RawFrame {
  op: number;
  correlationId: number;
  body: Buffer;
}

export class RawClient {
  private frames: RawFrame[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    const d = new P.FrameDecoder(64 * 1024 * 1024, (op, correlationId, buf, start, end) => {
      this.frames.push({ op, correlationId, body: Buffer.from(buf.subarray(start, end)) });
      this.wake();
    });
    socket.on('data', (c: Buffer) => d.push(c));
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((r) =>
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        r();
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Connects and, with `hello`, negotiates protocol versions 1 to maxVersion. */
  static async open(port: number, hello = true, maxVersion = 1): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawClient(socket);
    if (hello) {
      c.send(P.encodeFrame(P.OP.HELLO, 1, (w) => P.encodeHello(w, { minVersion: 1, maxVersion, clientName: 'raw' })));
      const f = await c.next();
      if (f?.op !== P.OP.HELLO_OK) throw new Error('no HELLO_OK');
    }
    return c;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next frame, or null once the server closed the connection. */
  async next(timeoutMs = 2_000): Promise<RawFrame | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error('no frame in time');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 20);
      });
    }
    return this.frames.shift()!;
  }

  /** The next frame of this op, skipping others (pushes); an ERROR frame or a close fails. */
  async nextOp(op: number): Promise<RawFrame> {
    for (;;) {
      const f = await this.next();
      if (f === null) throw new Error(`connection closed before op ${op}`);
      if (f.op === op) return f;
      if (f.op === P.OP.ERROR) throw new Error(`ERROR frame: ${this.error(f).message}`);
    }
  }

  error(f: RawFrame): { code: string; message: string } {
    return P.decodeError(new P.WireReader().reset(f.body));
  }

  /**
   * Sends each request frame and checks that it is answered, in turn, with an ERROR of the given
   * code for that frame's correlation id.
   */
  async expectErrors(cases: ReadonlyArray<[frame: Buffer, code: string]>): Promise<void> {
    for (const [frame, code] of cases) {
      const correlationId = frame.readUInt32BE(5);
      this.send(frame);
      const f = await this.next();
      expect(f, `answer to correlation ${correlationId}`).not.toBeNull();
      expect([f!.op, f!.correlationId]).toEqual([P.OP.ERROR, correlationId]);
      const e = this.error(f!);
      expect(e.code, `correlation ${correlationId}: ${e.message}`).toBe(code);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
