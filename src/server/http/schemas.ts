// JSON schemas for the HTTP routes: fastify validates requests with them and @fastify/swagger turns
// them into /openapi.json. Kept beside each other so the contract is readable in one place.
import { LIMITS, NAME_PATTERN, SERVER_LIMITS } from '../../common/index.js';
import { MAX_RECEIVE_ATTEMPT_ID_CHARS, RECEIVE_ATTEMPT_ID_CHAR_CLASS } from '../../protocol/index.js';

const namePattern = NAME_PATTERN.source;

export const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: namePattern } },
} as const;

export const errorBody = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        retryAfterMs: { type: 'number' },
        details: { type: 'object', additionalProperties: true },
      },
      required: ['code', 'message'],
    },
  },
} as const;

const headers = { type: 'object', additionalProperties: { type: 'string' } } as const;

export const messageInput = {
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    type: { type: 'string' },
    key: { type: ['string', 'null'] },
    headers,
    payload: {},
    payloadBase64: { type: 'string', description: 'byte payload, base64; use instead of payload' },
    priority: { type: 'integer', minimum: 0, maximum: LIMITS.maxPriority },
    delayMs: { type: 'integer', minimum: 0 },
    groupId: { type: 'string' },
    dedupId: { type: 'string' },
    routingKey: { type: 'string' },
    ttlMs: { type: 'integer', minimum: 0 },
    producerId: { type: 'string' },
    sequence: { type: 'integer', minimum: 0 },
    partition: { type: 'integer', minimum: 0 },
  },
} as const;

/** One message, or { messages: [...] } for a batch. */
export const publishBody = {
  anyOf: [
    {
      type: 'object',
      required: ['messages'],
      additionalProperties: false,
      properties: { messages: { type: 'array', minItems: 1, items: messageInput } },
    },
    messageInput,
  ],
} as const;

export const createTopicBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: namePattern },
    partitions: { type: 'integer', minimum: 1 },
    retentionMs: { type: 'integer', minimum: 0 },
    retentionBytes: { type: 'integer', minimum: 0 },
    segmentBytes: { type: 'integer', minimum: 1 },
    segmentMs: { type: 'integer', minimum: 1 },
    maxMessageBytes: { type: 'integer', minimum: 1 },
    dedupWindowMs: { type: 'integer', minimum: 0 },
  },
} as const;

export const createQueueBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: namePattern },
    visibilityTimeoutMs: { type: 'integer', minimum: 1, maximum: LIMITS.maxVisibilityTimeoutMs },
    maxDeliveries: { type: 'integer', minimum: 0, maximum: LIMITS.maxDeliveries }, // 0: retry forever (the default)
    deadLetterQueue: { type: 'string', pattern: namePattern },
    retry: {
      type: 'object',
      additionalProperties: false,
      properties: {
        initialDelayMs: { type: 'integer', minimum: 0 },
        maxDelayMs: { type: 'integer', minimum: 0 },
        multiplier: { type: 'number', minimum: 1 },
        jitter: { type: 'number', minimum: 0, maximum: 1 },
      },
    },
    delayMs: { type: 'integer', minimum: 0 },
    ttlMs: { type: 'integer', minimum: 0 },
    onExpire: { enum: ['drop', 'dead-letter'] },
    priorities: { type: 'integer', minimum: 1 },
    fifo: { type: 'boolean' },
    contentBasedDedup: { type: 'boolean' },
    dedupWindowMs: { type: 'integer', minimum: 0 },
    maxLength: { type: 'integer', minimum: 1 },
    maxBytes: { type: 'integer', minimum: 1 },
    overflow: { enum: ['reject', 'block', 'drop-oldest', 'drop-lowest-priority', 'dead-letter'] },
    blockTimeoutMs: { type: 'integer', minimum: 0 },
    rateLimit: {
      type: 'object',
      additionalProperties: false,
      properties: {
        messagesPerSecond: { type: 'number', minimum: 0 },
        bytesPerSecond: { type: 'number', minimum: 0 },
        burstMessages: { type: 'number', minimum: 0 },
        burstBytes: { type: 'number', minimum: 0 },
        mode: { enum: ['delay', 'reject'] },
      },
    },
    maxMessageBytes: { type: 'integer', minimum: 1 },
    segmentBytes: { type: 'integer', minimum: 1024 },
  },
} as const;

export const receiveBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max: { type: 'integer', minimum: 1 },
    waitMs: { type: 'integer', minimum: 0 },
    visibilityTimeoutMs: { type: 'integer', minimum: 1, maximum: LIMITS.maxVisibilityTimeoutMs },
    // As SQS's ReceiveRequestAttemptId: a retry with it gets the same messages (docs/operations.md).
    attemptId: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_RECEIVE_ATTEMPT_ID_CHARS,
      pattern: `^${RECEIVE_ATTEMPT_ID_CHAR_CLASS}+$`,
    },
  },
} as const;

export const ackBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    receipt: {
      type: 'string',
      minLength: 1,
      description: 'One receipt: the answer is { acked: 1 }, or the error (410 RECEIPT_INVALID for a stale one)',
    },
    receipts: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      minItems: 1,
      description: `A batch (after receipt, if both are given): each is settled on its own and the answer is 200 with a result per receipt, as SQS DeleteMessageBatch answers. At most ${SERVER_LIMITS.maxReceiptsPerRequest} receipts per request, receipt included (maxReceiptsPerRequest, the largest receive max); more is 400 INVALID_ARGUMENT and nothing is settled`,
    },
  },
} as const;

export const nackBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...ackBody.properties,
    // maxDelayMs here too: a batch refuses a bad option as a whole, not receipt by receipt.
    delayMs: { type: 'integer', minimum: 0, maximum: LIMITS.maxDelayMs },
    requeue: { type: 'boolean' },
    error: { type: 'string' },
  },
} as const;

/** What a batch ack (`acked`) or nack (`nacked`) answers; only /openapi.json reads it (app.ts). */
export function settledAnswer(countField: 'acked' | 'nacked') {
  return {
    type: 'object',
    required: [countField],
    properties: {
      [countField]: { type: 'integer', description: 'receipts settled by this request' },
      failed: { type: 'integer', description: 'batch only: receipts left as they were' },
      results: {
        type: 'array',
        description: 'batch only: one entry per receipt, in request order',
        items: {
          type: 'object',
          required: ['receipt', 'ok'],
          properties: {
            receipt: { type: 'string' },
            ok: { type: 'boolean', description: 'true: settled; false: unchanged, error says why' },
            error: errorBody.properties.error,
          },
        },
      },
    },
  } as const;
}

export const createExchangeBody = {
  type: 'object',
  required: ['name', 'type'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: namePattern },
    type: { enum: ['direct', 'fanout', 'topic', 'headers'] },
    alternate: { type: 'string', pattern: namePattern },
  },
} as const;

export const bindingBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    queue: { type: 'string', pattern: namePattern },
    topic: { type: 'string', pattern: namePattern },
    exchange: { type: 'string', pattern: namePattern },
    url: { type: 'string' },
    secret: { type: 'string' },
    pattern: { type: 'string' },
    headers,
    match: { enum: ['all', 'any'] },
    filter: { type: 'object', additionalProperties: true },
  },
} as const;

export const eventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    group: { type: 'string', pattern: namePattern },
    from: { type: 'string', description: "'earliest' | 'latest' | an offset | 'ts:<ms since epoch>'" },
  },
} as const;
