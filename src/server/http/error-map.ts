// The one table mapping WharfError codes to HTTP statuses, and the JSON error body every route returns.
// Clients branch on `error.code`; the status only tells generic HTTP tooling what kind of failure it was.
import { WharfError, toWharfError, type ErrorCode } from '../../common/index.js';

export const HTTP_STATUS_BY_CODE: Record<ErrorCode, number> = {
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  INVALID_ARGUMENT: 400,
  MESSAGE_TOO_LARGE: 413,
  QUEUE_FULL: 429,
  RATE_LIMITED: 429,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  TIMEOUT: 504,
  UNAVAILABLE: 503,
  CLOSED: 503,
  // 410 Gone: the lease the receipt named has expired or was settled; the message may be delivered again.
  RECEIPT_INVALID: 410,
  CORRUPT_DATA: 500,
  LIMIT_EXCEEDED: 429,
  PROTOCOL_ERROR: 400,
  CONFLICT: 409,
  INTERNAL: 500,
  // A handler's own signal that it turned a delivery away (its reader is leaving); no route answers
  // with it, but one that reached a client would mean the reader went away: unavailable.
  RELEASED: 503,
};

export interface HttpErrorBody {
  error: { code: ErrorCode; message: string; retryAfterMs?: number; details?: Record<string, unknown> };
}

export interface HttpError {
  status: number;
  body: HttpErrorBody;
  /** Seconds, for the Retry-After header (429 and 503 when the broker said when to retry). */
  retryAfterSeconds?: number;
}

/** Errors fastify itself raises (body parsing, schema validation, size) carry these codes. */
const FASTIFY_CODES: Record<string, { code: ErrorCode; fix: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'INVALID_ARGUMENT', fix: 'send a valid JSON document' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'INVALID_ARGUMENT', fix: 'send a JSON body, or omit the content-type header' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'INVALID_ARGUMENT', fix: 'send content-type: application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'INVALID_ARGUMENT', fix: 'send a correct content-length' },
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'MESSAGE_TOO_LARGE',
    fix: 'send a smaller body or raise maxMessageBytes on the server',
  },
  FST_ERR_VALIDATION: { code: 'INVALID_ARGUMENT', fix: 'see the OpenAPI description at /openapi.json' },
};

export function toHttpError(err: unknown): HttpError {
  const wharf = fromFastify(err) ?? toWharfError(err);
  const status = HTTP_STATUS_BY_CODE[wharf.code] ?? 500;
  const out: HttpError = { status, body: { error: wharf.toJSON() } };
  if (wharf.retryAfterMs !== undefined) out.retryAfterSeconds = Math.max(1, Math.ceil(wharf.retryAfterMs / 1000));
  else if (status === 429) out.retryAfterSeconds = 1;
  return out;
}

function fromFastify(err: unknown): WharfError | null {
  if (err instanceof WharfError || typeof err !== 'object' || err === null) return null;
  const e = err as { code?: unknown; validation?: unknown; message?: unknown; statusCode?: unknown };
  const message = typeof e.message === 'string' ? e.message : 'bad request';
  if (e.validation !== undefined) {
    return new WharfError(
      'INVALID_ARGUMENT',
      `request does not match the route's schema: ${message}; see /openapi.json`,
    );
  }
  const known = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
  if (known) return new WharfError(known.code, `${message}; ${known.fix}`);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new WharfError('INVALID_ARGUMENT', message);
  }
  return null;
}
