// The native server's limits and counters (the counters feed /metrics).
import { NATIVE_LIMITS, SERVER_LIMITS, WharfError } from '../../common/index.js';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../protocol/index.js';

export interface ServerLimits {
  maxConnections: number;
  maxFrameBytes: number;
  maxInFlightRequests: number;
  /** 0 disables the idle timeout. */
  idleTimeoutMs: number;
  maxReceiptsPerConnection: number;
  maxSubscriptionsPerConnection: number;
  /** Largest DELIVER or RECEIVED frame holding more than one delivery; at most NATIVE_LIMITS' (the client's ceiling). */
  maxResponseFrameBytes: number;
  /**
   * Highest protocol version offered at HELLO (default: the newest this code speaks). Pin it to the
   * older side's version during a rolling upgrade, so every server answers alike.
   */
  maxProtocolVersion: number;
}

export function resolveLimits(o: Partial<ServerLimits>): ServerLimits {
  const pick = (name: keyof ServerLimits & keyof typeof NATIVE_LIMITS): number => {
    const v = o[name] ?? NATIVE_LIMITS[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw new WharfError('INVALID_ARGUMENT', `native server option ${name} is ${String(v)}; pass an integer >= 0`);
    return v;
  };
  return {
    maxConnections: pick('maxConnections'),
    maxFrameBytes: pick('maxFrameBytes'),
    maxInFlightRequests: pick('maxInFlightRequests'),
    idleTimeoutMs: idleTimeout(pick('idleTimeoutMs')),
    maxReceiptsPerConnection: pick('maxReceiptsPerConnection'),
    maxSubscriptionsPerConnection: pick('maxSubscriptionsPerConnection'),
    maxResponseFrameBytes: responseFrameBytes(pick('maxResponseFrameBytes')),
    maxProtocolVersion: protocolVersion(o.maxProtocolVersion),
  };
}

function idleTimeout(v: number): number {
  if (v > SERVER_LIMITS.maxIdleTimeoutMs) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `native server option idleTimeoutMs is ${v}; pass at most ${SERVER_LIMITS.maxIdleTimeoutMs} (the longest a timer waits)`,
    );
  }
  return v;
}

function responseFrameBytes(v: number): number {
  if (v < 1 || v > NATIVE_LIMITS.maxResponseFrameBytes) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `native server option maxResponseFrameBytes is ${v}; pass an integer from 1 to ${NATIVE_LIMITS.maxResponseFrameBytes} (clients accept no larger frame)`,
    );
  }
  return v;
}

function protocolVersion(v: unknown): number {
  if (v === undefined) return PROTOCOL_VERSION;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < MIN_PROTOCOL_VERSION || v > PROTOCOL_VERSION) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `native server option maxProtocolVersion is ${String(v)}; pass an integer from ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`,
    );
  }
  return v;
}

export interface ServerCounters {
  connectionsOpen: number;
  connectionsTotal: number;
  connectionsRejected: number;
  connectionErrors: number;
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
}

export function newCounters(): ServerCounters {
  return {
    connectionsOpen: 0,
    connectionsTotal: 0,
    connectionsRejected: 0,
    connectionErrors: 0,
    bytesIn: 0,
    bytesOut: 0,
    framesIn: 0,
    framesOut: 0,
  };
}
