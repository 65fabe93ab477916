// A TCP proxy between a client and a server on loopback that sees the client's frames: tests use
// it to cut a connection at a chosen frame, or to drop the server's answers, as a network would.
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';

export interface FrameProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Per accepted connection, in order: the ops of the frames the client sent through it. */
  readonly opsByConnection: number[][];
  /** Return true to cut the connection at this client frame (not forwarded). */
  cutAt: (connection: number, op: number) => boolean;
  /** Index of the connection whose server-to-client bytes are dropped (-1: none). */
  muteServerOn: number;
  /** Connections from this index on forward nothing the client sends (a server that never answers; Infinity: none). */
  swallowFrom: number;
  /**
   * Index of a connection that goes silent both ways, and whose server-side close is not passed on
   * (a partition, a NAT that dropped its state, a host that lost power: no close reaches the client; -1: none).
   */
  silenceOn: number;
  /**
   * From connection `from` on, once the client has sent a frame with `op` on it, what the server
   * sends is held for `ms`, then written as one chunk, as TCP may coalesce frames (null: none).
   */
  delayServerAfter: { from: number; op: number; ms: number } | null;
  /** Sockets open now, both sides. */
  readonly openSockets: number;
  /** Cuts every connection now (the client sees its server go away). */
  cutAll(): void;
  close(): Promise<void>;
}

export async function startFrameProxy(upstreamPort: number): Promise<FrameProxy> {
  const live = new Set<Socket>();
  const opsByConnection: number[][] = [];
  let connections = 0;
  const server: Server = createServer((client) => {
    const index = connections++;
    const ops: number[] = [];
    opsByConnection.push(ops);
    const upstream = netConnect({ host: '127.0.0.1', port: upstreamPort });
    live.add(client);
    live.add(upstream);
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', () => (s === upstream && proxy.silenceOn === index ? upstream.destroy() : cut()));
      s.on('close', () => (s === upstream && proxy.silenceOn === index ? upstream.destroy() : cut()));
    }
    let held: Buffer[] = [];
    let delayMs = 0; // set once the client sent delayServerAfter's op on this connection
    upstream.on('data', (d: Buffer) => {
      if (proxy.muteServerOn === index || proxy.silenceOn === index) return;
      if (delayMs === 0) return void client.write(d);
      if (held.push(d) === 1)
        setTimeout(() => {
          client.write(Buffer.concat(held));
          held = [];
        }, delayMs);
    });
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (d: Buffer) => {
      if (index >= proxy.swallowFrom || proxy.silenceOn === index) return;
      pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
      let at = 0;
      while (pending.length - at >= 9) {
        const end = at + 4 + pending.readUInt32BE(at);
        if (end > pending.length) break;
        const op = pending[at + 4];
        ops.push(op);
        const delay = proxy.delayServerAfter;
        if (delay !== null && index >= delay.from && op === delay.op) delayMs = delay.ms;
        if (proxy.cutAt(index, op)) return cut();
        upstream.write(pending.subarray(at, end));
        at = end;
      }
      pending = pending.subarray(at);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: FrameProxy = {
    port: (server.address() as { port: number }).port,
    get connections() {
      return connections;
    },
    opsByConnection,
    cutAt: () => false,
    muteServerOn: -1,
    swallowFrom: Infinity,
    silenceOn: -1,
    delayServerAfter: null,
    get openSockets() {
      return live.size;
    },
    cutAll: () => {
      for (const s of live) s.destroy();
      live.clear();
    },
    close: async () => {
      proxy.cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}

/** Waits until check() holds, or fails naming what it waited for. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
