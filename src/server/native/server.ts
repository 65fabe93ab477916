// The native-protocol TCP server: accepts connections up to maxConnections, hands each to a
// Connection with the shared dispatch table, and closes gracefully (stop accepting, answer what is
// in flight, then end every connection).
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { WharfError, systemClock, type Clock } from '../../common/index.js';
import { OP, encodeError, encodeFrame, type Wharf } from '../../protocol/index.js';
import { Connection } from './connection.js';
import { buildDispatchTable } from './dispatch.js';
import { newCounters, resolveLimits, type ServerCounters, type ServerLimits } from './limits.js';
import { ReceiveAttempts } from '../receive-attempts.js';

export interface NativeServerOptions extends Partial<ServerLimits> {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7411; 0 picks a free port. */
  port?: number;
  /** Longest close() waits for in-flight requests before ending connections. */
  closeTimeoutMs?: number;
  clock?: Clock;
}

export interface NativeServer {
  address(): { host: string; port: number };
  /** Live counters for /metrics (read them; do not write). */
  readonly counters: Readonly<ServerCounters>;
  readonly limits: Readonly<ServerLimits>;
  /** Stops accepting, answers requests in flight, closes every connection. The broker stays open. */
  close(): Promise<void>;
}

export const DEFAULT_NATIVE_PORT = 7411;

export async function startNativeServer(broker: Wharf, options: NativeServerOptions = {}): Promise<NativeServer> {
  const limits = resolveLimits(options);
  const clock = options.clock ?? systemClock;
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  const counters = newCounters();
  const table = buildDispatchTable();
  const connections = new Set<Connection>();
  /** RECEIVE answers by attempt id, for retries that arrive on another connection. */
  const receiveAttempts = new ReceiveAttempts<Buffer>(clock, (delivery) => delivery.length); // each delivery as encoded
  let closing = false;

  const refuse = (socket: Socket, err: WharfError): void => {
    counters.connectionsRejected++;
    socket.on('error', () => undefined);
    socket.end(encodeFrame(OP.ERROR, 0, (w) => encodeError(w, err)));
    setTimeout(() => socket.destroy(), 1_000).unref();
  };

  const server: Server = createServer((socket) => {
    if (closing)
      return refuse(
        socket,
        new WharfError('UNAVAILABLE', 'the server is shutting down; reconnect to another or retry later'),
      );
    if (connections.size >= limits.maxConnections) {
      return refuse(
        socket,
        new WharfError(
          'LIMIT_EXCEEDED',
          `the server already has ${limits.maxConnections} connections (maxConnections); close idle clients or raise maxConnections`,
          {
            details: { limit: 'maxConnections', value: limits.maxConnections },
          },
        ),
      );
    }
    counters.connectionsTotal++;
    counters.connectionsOpen++;
    const conn = new Connection(socket, broker, limits, table, counters, clock, receiveAttempts, (c) => {
      if (connections.delete(c)) counters.connectionsOpen--;
    });
    connections.add(conn);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_NATIVE_PORT, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    address() {
      const a = server.address() as AddressInfo;
      return { host: a.address, port: a.port };
    },
    counters,
    limits,
    async close() {
      if (closing) return;
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...connections].map((c) => c.end(closeTimeoutMs)));
      await stopped;
    },
  };
}
