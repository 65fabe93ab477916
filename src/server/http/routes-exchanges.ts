// /exchanges routes, registered only when the broker has exchanges.
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../common/index.js';
import type { BindingOptions, BindingTarget, ExchangeOptions } from '../../broker/index.js';
import type { ExchangeCapable } from './broker-port.js';
import { publishBody, type PublishBody } from './publish.js';
import { bindingBody, createExchangeBody, nameParams, publishBody as publishSchema } from './schemas.js';

type NameParams = { Params: { name: string } };
type BindingBody = Partial<{ queue: string; topic: string; exchange: string; url: string; secret: string }> &
  BindingOptions;

export function registerExchangeRoutes(app: FastifyInstance, broker: ExchangeCapable): void {
  const tags = ['exchanges'];
  app.get('/exchanges', { schema: { tags } }, async () => ({ exchanges: await broker.listExchanges() }));

  app.post<{ Body: ExchangeOptions & { name: string } }>(
    '/exchanges',
    { schema: { tags, body: createExchangeBody } },
    async (req, reply) => {
      const { name, ...options } = req.body;
      reply.code(201);
      return broker.createExchange(name, options);
    },
  );

  app.get<NameParams>('/exchanges/:name', { schema: { tags, params: nameParams } }, async (req) =>
    broker.describeExchange(req.params.name),
  );

  app.get<NameParams>('/exchanges/:name/bindings', { schema: { tags, params: nameParams } }, async (req) => {
    await broker.describeExchange(req.params.name);
    return { bindings: await broker.listBindings(req.params.name) };
  });

  app.post<NameParams & { Body: BindingBody }>(
    '/exchanges/:name/bindings',
    { schema: { tags, params: nameParams, body: bindingBody } },
    async (req, reply) => {
      const { queue, topic, exchange, url, secret, ...options } = req.body;
      reply.code(201);
      return broker.bind(req.params.name, targetOf({ queue, topic, exchange, url, secret }), options);
    },
  );

  app.post<NameParams & { Body: PublishBody }>(
    '/exchanges/:name/messages',
    { schema: { tags, params: nameParams, body: publishSchema } },
    async (req, reply) => {
      await broker.describeExchange(req.params.name);
      const result = await publishBody(broker, req.params.name, req.body);
      reply.code(201);
      return result;
    },
  );
}

function targetOf(
  t: Partial<{ queue: string; topic: string; exchange: string; url: string; secret: string }>,
): BindingTarget {
  const given = [t.queue, t.topic, t.exchange, t.url].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      'a binding needs exactly one target: "queue", "topic", "exchange" or "url" (with "secret")',
    );
  }
  if (t.queue !== undefined) return { queue: t.queue };
  if (t.topic !== undefined) return { topic: t.topic };
  if (t.exchange !== undefined) return { exchange: t.exchange };
  if (t.secret === undefined)
    throw new WharfError('INVALID_ARGUMENT', 'a url binding needs a "secret" to sign its POSTs with');
  return { url: t.url as string, secret: t.secret };
}
