// GET /topics/{name}/events: streaming consumption as Server-Sent Events. With ?group= the stream is a
// consumer-group member: an offset is committed after its event was handed to the socket (SSE has no
// acknowledgement, so what the socket buffers held when a client drops is lost to the group:
// operations.md says so); a message whose write fails is retried by the group. Without a group it is
// a private reader.
import { once } from 'node:events';
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../common/index.js';
import { parseStartPosition, type StartPosition, type Subscription, type TopicMessage } from '../../broker/index.js';
import type { HttpBroker } from './broker-port.js';
import { toJsonMessage } from './message-json.js';
import { eventsQuery, nameParams } from './schemas.js';
import { toHttpError } from './error-map.js';

export interface SseOptions {
  maxStreams: number;
  /** A comment line this often keeps proxies and the idle timeout from closing a quiet stream. */
  keepaliveIntervalMs: number;
}

export function registerSseRoute(app: FastifyInstance, broker: HttpBroker, options: SseOptions): void {
  const streams = new Set<() => Promise<void>>();
  app.addHook('preClose', async () => {
    await Promise.all([...streams].map((end) => end()));
  });

  app.get<{ Params: { name: string }; Querystring: { group?: string; from?: string } }>(
    '/topics/:name/events',
    {
      // No HEAD twin: a HEAD answer has no body, so the events written to it would be dropped
      // while a group's offsets moved past them.
      exposeHeadRoute: false,
      schema: { tags: ['topics'], params: nameParams, querystring: eventsQuery },
    },
    async (req, reply) => {
      const { name } = req.params;
      const from = parseFrom(req.query.from);
      if (streams.size >= options.maxStreams) {
        throw new WharfError(
          'LIMIT_EXCEEDED',
          `too many open event streams (maxSseStreams ${options.maxStreams}); close one or raise the limit`,
        );
      }
      const raw = reply.raw;
      let closed = false;
      let onClosed!: () => void;
      const whenClosed = new Promise<void>((resolve) => (onClosed = resolve));
      let sub: Subscription | null = null;
      let keepalive: NodeJS.Timeout | null = null;
      const end = async (): Promise<void> => {
        if (!closed) {
          closed = true;
          onClosed();
          raw.end();
        }
        if (keepalive !== null) clearInterval(keepalive);
        streams.delete(end);
        await sub?.close();
      };
      streams.add(end); // the slot is taken before the subscribe, so concurrent requests cannot pass the limit

      // Deliveries may start before the response head is written: they wait for it.
      let markStreaming!: () => void;
      const streaming = new Promise<void>((resolve) => (markStreaming = resolve));
      // A delivery that finds the stream closed (the client left, the server is stopping) is
      // released: not committed, so the group's next reader gets it, and not counted in the
      // topic's errorRate, since a reader leaving is no handler failure.
      const handler = async (m: TopicMessage): Promise<void> => {
        await streaming;
        if (closed) throw new WharfError('RELEASED', 'event stream closed');
        const frame = `id: ${m.partition}:${m.offset}\nevent: message\ndata: ${JSON.stringify(toJsonMessage(m as never))}\n\n`;
        // Backpressure: a slow client holds its partitions' deliveries here instead of growing a buffer.
        if (!raw.write(frame) && !closed) await Promise.race([once(raw, 'drain'), whenClosed]);
        if (closed) throw new WharfError('RELEASED', 'event stream closed');
      };
      const fail = async (err: unknown): Promise<void> => {
        if (closed) return;
        const { body } = toHttpError(err);
        raw.write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
        await end();
      };
      // Subscribed before the stream starts: a bad group, position or topic is answered with its
      // status (400, 404…) as any request, not as a 200 stream that only carries an error event.
      try {
        const opts = req.query.group !== undefined ? { group: req.query.group, from } : { from };
        sub = await broker.subscribe(name, opts, handler);
      } catch (err) {
        streams.delete(end);
        throw err;
      }
      if (closed || raw.destroyed) {
        // The client left, or the server began shutting down (end() ran), while it subscribed.
        // Deliveries already waiting for the stream find it closed (they must not wait forever:
        // closing the subscription waits for them).
        markStreaming();
        await end();
        return;
      }
      reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      raw.write(': connected\n\n');
      keepalive = setInterval(() => raw.write(': keepalive\n\n'), options.keepaliveIntervalMs);
      keepalive.unref();
      raw.on('close', () => void end());
      markStreaming();
      // The topic deleted under the stream: say so (NOT_FOUND) and end it.
      void sub.ended.then((reason) => (reason === null ? undefined : fail(reason)));
    },
  );
}

function parseFrom(from: string | undefined): StartPosition {
  if (from === undefined) return 'latest';
  const position = parseStartPosition(from);
  if (position !== null) return position;
  throw new WharfError(
    'INVALID_ARGUMENT',
    `from=${JSON.stringify(from)} is not a position: use earliest, latest, an offset, or ts:<ms since epoch>`,
  );
}
