// The remote client's public face: connect('wharf://host:port') -> a Wharf over TCP.
import { LIMITS, NATIVE_LIMITS, WharfError } from '../common/index.js';
import { ClientConnection } from './connection.js';
import { RemoteWharf } from './remote-wharf.js';

export { RemoteWharf } from './remote-wharf.js';

export interface ConnectOptions {
  /** Producer linger: a single publish waits this long for others to share its frame (default 0 = end of tick). */
  lingerMs?: number;
  /** Most messages per PUBLISH frame (default 1000). */
  maxBatchMessages?: number;
  /** Encoded bytes per frame (payloads and the rest of each message) before it is sent early (default 1 MiB). */
  maxBatchBytes?: number;
  /** Stamp producerId + sequence so retried publishes are stored once (default true). */
  idempotent?: boolean;
  /** Deliveries a topic subscription may have outstanding (default 1000). */
  subscribeCredits?: number;
  reconnectInitialDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** Pending requests fail with UNAVAILABLE after this long disconnected (default 30 s). */
  reconnectTimeoutMs?: number;
  /** One connection attempt, TCP connect and handshake, fails after this long (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Requests (each a batch of publishes, a receive, an admin call…) that may wait while the client
   * reconnects (default 10,000); more fail at once with LIMIT_EXCEEDED instead of growing memory.
   */
  maxWaitingRequests?: number;
  clientName?: string;
}

/** Parses wharf://host:port (port defaults to 7411). */
export function parseWharfUrl(url: string): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new WharfError('INVALID_ARGUMENT', `${JSON.stringify(url)} is not a URL; use wharf://host:port`);
  }
  if (u.protocol !== 'wharf:')
    throw new WharfError(
      'INVALID_ARGUMENT',
      `${JSON.stringify(url)} does not start with wharf://; use wharf://host:port`,
    );
  const port = u.port === '' ? 7411 : Number(u.port);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (host === '')
    throw new WharfError('INVALID_ARGUMENT', `${JSON.stringify(url)} has no host; use wharf://host:port`);
  return { host, port };
}

/** Connects to a Wharf server; the result implements the same Wharf interface as the embedded Broker. */
export async function connect(url: string, options: ConnectOptions = {}): Promise<RemoteWharf> {
  for (const [key, min, max] of [
    ['connectTimeoutMs', 1, Number.MAX_SAFE_INTEGER],
    ['maxWaitingRequests', 1, Number.MAX_SAFE_INTEGER],
    ['reconnectTimeoutMs', 0, Number.MAX_SAFE_INTEGER],
    // Sent as SUBSCRIBE's u32 credits; 0 would leave a subscription with nothing delivered.
    ['subscribeCredits', 1, 0xffffffff],
  ] as const) {
    const v = options[key];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < min || v > max)) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
      throw new WharfError('INVALID_ARGUMENT', `${key} is ${JSON.stringify(v)}; pass an integer ${range}`);
    }
  }
  const { host, port } = parseWharfUrl(url);
  const conn = new ClientConnection({
    host,
    port,
    clientName: options.clientName ?? 'wharf-node',
    reconnectInitialDelayMs: options.reconnectInitialDelayMs ?? 50,
    reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? 2_000,
    reconnectTimeoutMs: options.reconnectTimeoutMs ?? 30_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    maxWaitingRequests: options.maxWaitingRequests ?? 10_000,
    maxFrameBytes: NATIVE_LIMITS.maxClientFrameBytes,
  });
  await conn.open();
  return new RemoteWharf(
    conn,
    {
      lingerMs: options.lingerMs ?? 0,
      maxBatchMessages: Math.min(options.maxBatchMessages ?? 1000, LIMITS.maxBatchMessages),
      maxBatchBytes: options.maxBatchBytes ?? 1024 * 1024,
      idempotent: options.idempotent ?? true,
    },
    { subscribeCredits: options.subscribeCredits ?? 1000 },
  );
}
