// The one error type that crosses every public surface (embedded API, wire, HTTP, CLI).
// Codes are stable: clients branch on them, so never rename one.

export const ERROR_CODES = [
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'INVALID_ARGUMENT',
  'MESSAGE_TOO_LARGE',
  'QUEUE_FULL',
  'RATE_LIMITED',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'TIMEOUT',
  'UNAVAILABLE',
  'CLOSED',
  'RECEIPT_INVALID',
  'CORRUPT_DATA',
  'LIMIT_EXCEEDED',
  'PROTOCOL_ERROR',
  'CONFLICT',
  'INTERNAL',
  // Thrown by a consumer's handler, not by the broker: the handler turns its delivery away
  // (its reader is leaving). Not a failure: nothing is counted, nothing is committed or acked,
  // and the message goes back (docs/topics.md, docs/queues.md).
  'RELEASED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface WharfErrorOptions {
  /** For QUEUE_FULL / RATE_LIMITED: when a retry is likely to succeed. */
  retryAfterMs?: number;
  /** Machine-readable context (file, position, limit name, ...). Values are JSON. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class WharfError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: WharfErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WharfError';
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; retryAfterMs?: number; details?: Record<string, unknown> } {
    const out: { code: ErrorCode; message: string; retryAfterMs?: number; details?: Record<string, unknown> } = {
      code: this.code,
      message: this.message,
    };
    if (this.retryAfterMs !== undefined) out.retryAfterMs = this.retryAfterMs;
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

export function isWharfError(err: unknown, code?: ErrorCode): err is WharfError {
  return err instanceof WharfError && (code === undefined || err.code === code);
}

/** Wraps anything thrown by user code or the platform so it can cross a public surface. */
export function toWharfError(err: unknown): WharfError {
  if (err instanceof WharfError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WharfError('INTERNAL', message, { cause: err });
}

/**
 * Refusals of a batch of merged single publishes that may concern some of its messages only (a bad
 * or too large one, a full queue or rate limit that would take some one by one): each message is
 * then published again alone. A refused batch stored nothing, so nothing is stored twice. Used by
 * the embedded broker's gathered singles and the remote client's shared frames alike.
 */
export const REFUSED_FOR_SOME_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'INVALID_ARGUMENT',
  'MESSAGE_TOO_LARGE',
  'QUEUE_FULL',
  'RATE_LIMITED',
]);
