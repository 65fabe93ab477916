// Operational routes: liveness, readiness, Prometheus metrics, per-name stats and the OpenAPI description.
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../common/index.js';
import type { BrokerMetrics } from '../metrics.js';
import type { HttpBroker } from './broker-port.js';
import { nameParams } from './schemas.js';

export interface OpsOptions {
  metrics: BrokerMetrics;
  /** False while starting or shutting down: load balancers should stop sending traffic. */
  isReady: () => boolean;
}

export function registerOpsRoutes(app: FastifyInstance, broker: HttpBroker, options: OpsOptions): void {
  const tags = ['operations'];
  // Liveness: the process answers. Says nothing about the broker, so an orchestrator does not restart a
  // server that is merely busy recovering or draining.
  app.get('/healthz', { schema: { tags } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags } }, async () => {
    if (!options.isReady()) {
      throw new WharfError(
        'UNAVAILABLE',
        'the broker is starting or shutting down; retry shortly or use another instance',
        { retryAfterMs: 1000 },
      );
    }
    return { status: 'ready' };
  });

  app.get('/metrics', { schema: { tags } }, async (_req, reply) => {
    const text = await options.metrics.scrape();
    reply.header('content-type', options.metrics.contentType);
    return text;
  });

  app.get<{ Params: { name: string } }>('/stats/:name', { schema: { tags, params: nameParams } }, async (req) =>
    broker.stats(req.params.name),
  );

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
