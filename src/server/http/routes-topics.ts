// /topics routes: create, list, describe, delete, publish. Streaming consumption lives in sse.ts.
import type { FastifyInstance } from 'fastify';
import type { TopicOptions } from '../../broker/index.js';
import type { HttpBroker } from './broker-port.js';
import { publishBody, type PublishBody } from './publish.js';
import { createTopicBody, nameParams, publishBody as publishSchema } from './schemas.js';

type NameParams = { Params: { name: string } };

export function registerTopicRoutes(app: FastifyInstance, broker: HttpBroker): void {
  const tags = ['topics'];
  app.get('/topics', { schema: { tags } }, async () => ({ topics: await broker.listTopics() }));

  app.post<{ Body: TopicOptions & { name: string } }>(
    '/topics',
    { schema: { tags, body: createTopicBody } },
    async (req, reply) => {
      const { name, ...options } = req.body;
      reply.code(201);
      return broker.createTopic(name, options);
    },
  );

  app.get<NameParams>('/topics/:name', { schema: { tags, params: nameParams } }, async (req) =>
    broker.describeTopic(req.params.name),
  );

  app.delete<NameParams>('/topics/:name', { schema: { tags, params: nameParams } }, async (req, reply) => {
    await broker.deleteTopic(req.params.name);
    reply.code(204);
  });

  app.post<NameParams & { Body: PublishBody }>(
    '/topics/:name/messages',
    { schema: { tags, params: nameParams, body: publishSchema } },
    async (req, reply) => {
      // Publish is polymorphic in the broker; this route promises a topic, so check the kind first.
      await broker.describeTopic(req.params.name);
      const result = await publishBody(broker, req.params.name, req.body);
      reply.code(201);
      return result;
    },
  );
}
