// Every setting of `wharf serve`, in one table: its flag, environment variable, config-file key,
// default and meaning. config.ts resolves from it, the serve command builds its flags from it, and
// docs/operations.md lists the same rows.
import { LIMITS, SERVER_LIMITS } from '../common/index.js';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../protocol/index.js';

export type SettingKind = 'string' | 'int' | 'fsync' | 'boolean' | 'logLevel';

/** The log levels `logLevel` takes (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface Setting {
  key: string;
  flag: string;
  env: string;
  kind: SettingKind;
  min?: number;
  max?: number;
  description: string;
}

export const SETTINGS = [
  {
    key: 'dataDir',
    flag: '--data-dir <dir>',
    env: 'WHARF_DATA_DIR',
    kind: 'string',
    description: 'directory holding all broker data',
  },
  {
    key: 'inMemory',
    flag: '--in-memory',
    env: 'WHARF_IN_MEMORY',
    kind: 'boolean',
    description: 'keep nothing on disk (tests, demos)',
  },
  {
    key: 'host',
    flag: '--host <address>',
    env: 'WHARF_HOST',
    kind: 'string',
    description: 'bind address of both listeners',
  },
  {
    key: 'port',
    flag: '--port <port>',
    env: 'WHARF_PORT',
    kind: 'int',
    min: 0,
    max: 65_535,
    description: 'native protocol port (0 = any free port)',
  },
  {
    key: 'httpPort',
    flag: '--http-port <port>',
    env: 'WHARF_HTTP_PORT',
    kind: 'int',
    min: 0,
    max: 65_535,
    description: 'HTTP API port (0 = any free port)',
  },
  {
    key: 'fsync',
    flag: '--fsync <policy>',
    env: 'WHARF_FSYNC',
    kind: 'fsync',
    description: 'always | interval | never',
  },
  {
    key: 'fsyncIntervalMs',
    flag: '--fsync-interval-ms <ms>',
    env: 'WHARF_FSYNC_INTERVAL_MS',
    kind: 'int',
    min: 1,
    description: "fsync period under 'interval'",
  },
  {
    key: 'maxMessageBytes',
    flag: '--max-message-bytes <n>',
    env: 'WHARF_MAX_MESSAGE_BYTES',
    kind: 'int',
    min: 1,
    description: 'largest message',
  },
  {
    key: 'maxBodyBytes',
    flag: '--max-body-bytes <n>',
    env: 'WHARF_MAX_BODY_BYTES',
    kind: 'int',
    min: 1,
    description: 'largest HTTP request body (default 2 x maxMessageBytes + 64 KiB)',
  },
  {
    key: 'maxConnections',
    flag: '--max-connections <n>',
    env: 'WHARF_MAX_CONNECTIONS',
    kind: 'int',
    min: 1,
    description: 'open connections per listener',
  },
  {
    key: 'idleTimeoutMs',
    flag: '--idle-timeout-ms <ms>',
    env: 'WHARF_IDLE_TIMEOUT_MS',
    kind: 'int',
    min: 1,
    max: SERVER_LIMITS.maxIdleTimeoutMs,
    description: 'close a connection silent this long',
  },
  {
    key: 'maxProtocolVersion',
    flag: '--max-protocol-version <n>',
    env: 'WHARF_MAX_PROTOCOL_VERSION',
    kind: 'int',
    min: MIN_PROTOCOL_VERSION,
    max: PROTOCOL_VERSION,
    description: 'highest native protocol version offered (pin it during a rolling upgrade)',
  },
  {
    key: 'maxHttpReceipts',
    flag: '--max-http-receipts <n>',
    env: 'WHARF_MAX_HTTP_RECEIPTS',
    kind: 'int',
    min: 1,
    description: 'leases remembered for HTTP ack/nack by receipt',
  },
  {
    key: 'maxSseStreams',
    flag: '--max-sse-streams <n>',
    env: 'WHARF_MAX_SSE_STREAMS',
    kind: 'int',
    min: 1,
    description: 'open Server-Sent Events streams',
  },
  {
    key: 'shutdownTimeoutMs',
    flag: '--shutdown-timeout-ms <ms>',
    env: 'WHARF_SHUTDOWN_TIMEOUT_MS',
    kind: 'int',
    min: 0,
    description: 'longest wait for in-flight requests at shutdown',
  },
  {
    key: 'logLevel',
    flag: '--log-level <level>',
    env: 'WHARF_LOG_LEVEL',
    kind: 'logLevel',
    description: 'fatal | error | warn | info | debug | trace | silent',
  },
] as const satisfies readonly Setting[];

export type SettingKey = (typeof SETTINGS)[number]['key'];

export interface ServerConfig {
  dataDir: string;
  inMemory: boolean;
  host: string;
  port: number;
  httpPort: number;
  fsync: 'always' | 'interval' | 'never';
  fsyncIntervalMs: number;
  maxMessageBytes: number;
  maxBodyBytes: number;
  maxConnections: number;
  idleTimeoutMs: number;
  maxProtocolVersion: number;
  maxHttpReceipts: number;
  maxSseStreams: number;
  shutdownTimeoutMs: number;
  logLevel: string;
}

/** Defaults; maxBodyBytes is derived from maxMessageBytes when not set (room for base64 and the envelope). */
export const DEFAULT_CONFIG: Omit<ServerConfig, 'maxBodyBytes'> = {
  dataDir: './data',
  inMemory: false,
  host: '127.0.0.1',
  port: 7411,
  httpPort: 7412,
  fsync: 'always',
  fsyncIntervalMs: LIMITS.fsyncIntervalMs,
  maxMessageBytes: LIMITS.maxMessageBytes,
  maxConnections: SERVER_LIMITS.maxConnections,
  idleTimeoutMs: SERVER_LIMITS.idleTimeoutMs,
  maxProtocolVersion: PROTOCOL_VERSION,
  maxHttpReceipts: SERVER_LIMITS.maxHttpReceipts,
  maxSseStreams: SERVER_LIMITS.maxSseStreams,
  shutdownTimeoutMs: SERVER_LIMITS.shutdownTimeoutMs,
  logLevel: 'info',
};

export function defaultMaxBodyBytes(maxMessageBytes: number): number {
  return 2 * maxMessageBytes + 64 * 1024;
}
