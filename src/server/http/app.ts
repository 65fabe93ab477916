// Builds the HTTP API (fastify) over any broker that implements Wharf: error mapping, limits, OpenAPI
// and every route group. The caller listens and closes; see server.ts.
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifySchema,
} from 'fastify';
import swagger from '@fastify/swagger';
import { NAME_MAX_CHARS, SERVER_LIMITS, WharfError, systemClock, type Clock } from '../../common/index.js';
import { BrokerMetrics, type ListenerStatsSource } from '../metrics.js';
import { hasExchanges, hasQueues, type HttpBroker } from './broker-port.js';
import { ConnectionTracker } from './connections.js';
import { toHttpError } from './error-map.js';
import { errorBody, settledAnswer } from './schemas.js';
import { ReceiptBook } from './receipts.js';
import { registerExchangeRoutes } from './routes-exchanges.js';
import { registerOpsRoutes } from './routes-ops.js';
import { registerQueueRoutes } from './routes-queues.js';
import { registerTopicRoutes } from './routes-topics.js';
import { registerSseRoute } from './sse.js';

export interface HttpAppOptions {
  /** Largest request body; the server derives it from maxMessageBytes. */
  maxBodyBytes: number;
  maxConnections?: number;
  idleTimeoutMs?: number;
  maxHttpReceipts?: number;
  maxSseStreams?: number;
  clock?: Clock;
  /**
   * The server's own logger (none: the app logs nothing): the app's errors go to it, and at level
   * `debug` or finer one line per request (a broker answers many small requests; info would log
   * every publish and poll).
   */
  logger?: FastifyBaseLogger;
  /** Where warnings go (a name whose stats failed during a metrics scrape); default the app's logger. */
  warn?: (fields: Record<string, unknown>, message: string) => void;
  isReady?: () => boolean;
  /** Other listeners (the native protocol) whose connections /metrics reports. */
  listeners?: Record<string, ListenerStatsSource>;
}

export interface HttpApp {
  app: FastifyInstance;
  connections: ConnectionTracker;
  metrics: BrokerMetrics;
  receipts: ReceiptBook;
}

/** Request lines are logged at these levels only: pino's `debug` and `trace`. */
function logsRequests(level: string): boolean {
  return level === 'debug' || level === 'trace';
}

export async function buildHttpApp(broker: HttpBroker, options: HttpAppOptions): Promise<HttpApp> {
  const idleTimeoutMs = options.idleTimeoutMs ?? SERVER_LIMITS.idleTimeoutMs;
  const app = Fastify({
    bodyLimit: options.maxBodyBytes,
    connectionTimeout: idleTimeoutMs,
    keepAliveTimeout: idleTimeoutMs,
    ...(options.logger !== undefined
      ? {
          loggerInstance: options.logger,
          logController: new LogController({ disableRequestLogging: !logsRequests(options.logger.level) }),
        }
      : { logger: false }),
    // A name may be 249 characters, each up to 3 when percent-encoded (fastify's default is 100).
    routerOptions: { maxParamLength: 3 * NAME_MAX_CHARS },
    // The router's own errors (a malformed URL) answer in the API's error body too.
    frameworkErrors: (err, _req, reply) => {
      const mapped = toHttpError(err);
      void (reply as FastifyReply).code(mapped.status).send(mapped.body);
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true } },
  });
  const connections = new ConnectionTracker(options.maxConnections ?? SERVER_LIMITS.maxConnections);
  connections.attach(app.server);
  const receipts = new ReceiptBook(
    options.clock ?? systemClock,
    options.maxHttpReceipts ?? SERVER_LIMITS.maxHttpReceipts,
  );
  const warn = options.warn ?? ((fields, message) => app.log.warn(fields, message));
  const metrics = new BrokerMetrics(
    broker,
    { http: () => connections.stats(), ...options.listeners },
    (kind, name, err) =>
      warn(
        { kind, name, code: err.code, err: err.message },
        `metrics: stats of ${kind} ${JSON.stringify(name)} failed; left out of this scrape`,
      ),
  );

  app.setErrorHandler((err, req, reply) => {
    const mapped = toHttpError(err);
    // A refusal (4xx, 503) is the client's to read; anything else is the server's to look into.
    if (mapped.status >= 500 && mapped.status !== 503) req.log.error({ err }, 'request failed');
    if (mapped.retryAfterSeconds !== undefined) reply.header('retry-after', String(mapped.retryAfterSeconds));
    void reply.code(mapped.status).send(mapped.body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}; see /openapi.json` } });
  });
  app.addHook('onRequest', async (req, reply) => {
    if (connections.isOverLimit(req.raw.socket)) {
      reply.header('connection', 'close');
      throw new WharfError(
        'UNAVAILABLE',
        `too many connections (maxConnections ${connections.limit}); retry later, reuse a connection, or raise the limit`,
        { retryAfterMs: 1000 },
      );
    }
  });

  await app.register(swagger, {
    transform: ({ schema, url, route }) => ({ url, schema: withDocumentedResponses(schema, route) }),
    openapi: {
      info: {
        title: 'Wharf HTTP API',
        version: '0.1.0',
        description: 'Topics, queues and exchanges over JSON. Errors: { error: { code, message } }.',
      },
    },
  });
  registerOpsRoutes(app, broker, { metrics, isReady: options.isReady ?? (() => true) });
  registerTopicRoutes(app, broker);
  registerSseRoute(app, broker, {
    maxStreams: options.maxSseStreams ?? SERVER_LIMITS.maxSseStreams,
    keepaliveIntervalMs: Math.min(15_000, Math.max(10, Math.floor(idleTimeoutMs / 2))),
  });
  if (hasQueues(broker)) registerQueueRoutes(app, broker, receipts, options.clock ?? systemClock, idleTimeoutMs);
  if (hasExchanges(broker)) registerExchangeRoutes(app, broker);
  await app.ready();
  return { app, connections, metrics, receipts };
}

/**
 * Routes whose success status is not 200, as their handlers set it (test/server/http.openapi.test.ts
 * checks the two agree). Only /openapi.json reads this: a response schema on the route itself would
 * also change how fastify serialises the answer.
 */
const SUCCESS_STATUS: Readonly<Record<string, 201 | 204>> = {
  'POST /topics': 201,
  'DELETE /topics/:name': 204,
  'POST /topics/:name/messages': 201,
  'POST /queues': 201,
  'DELETE /queues/:name': 204,
  'POST /queues/:name/messages': 201,
  'POST /exchanges': 201,
  'POST /exchanges/:name/bindings': 201,
  'POST /exchanges/:name/messages': 201,
};

/** Success bodies /openapi.json describes field by field; other routes' are documented as any object. */
const SUCCESS_BODY: Readonly<Record<string, object>> = {
  'POST /queues/:name/ack': settledAnswer('acked'),
  'POST /queues/:name/nack': settledAnswer('nacked'),
};

/** The route's schema for /openapi.json, with its success status, its errors and, for SSE, its content type. */
function withDocumentedResponses(
  schema: FastifySchema,
  route: { method: string | string[]; url: string },
): FastifySchema {
  if ((schema as { hide?: boolean }).hide === true) return schema;
  const method = Array.isArray(route.method) ? route.method[0] : route.method;
  const key = `${method} ${route.url}`;
  const status = SUCCESS_STATUS[key] ?? 200;
  const success =
    status === 204
      ? { description: 'Done; no body' }
      : route.url.endsWith('/events')
        ? {
            description: 'A stream of Server-Sent Events, one per message',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          }
        : {
            description: status === 201 ? 'Created' : 'OK',
            ...(SUCCESS_BODY[key] ?? { type: 'object', additionalProperties: true }),
          };
  const error = { description: 'An error: { error: { code, message } }', ...errorBody };
  return { ...schema, response: { [status]: success, '4XX': error, '5XX': error } };
}
