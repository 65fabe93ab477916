// /queues routes: create, list, describe, delete, publish, receive (long poll) and ack/nack by receipt.
import type { FastifyInstance } from 'fastify';
import { LIMITS, SERVER_LIMITS, WharfError, toWharfError, type Clock } from '../../common/index.js';
import type { NackOptions, QueueOptions, ReceiveOptions } from '../../broker/index.js';
import type { QueueCapable } from './broker-port.js';
import { ReceiveAttempts } from '../receive-attempts.js';
import { handBack } from '../undelivered.js';
import { toJsonMessage } from './message-json.js';
import { publishBody, type PublishBody } from './publish.js';
import type { ReceiptBook } from './receipts.js';
import {
  ackBody,
  createQueueBody,
  nackBody,
  nameParams,
  publishBody as publishSchema,
  receiveBody,
} from './schemas.js';

type NameParams = { Params: { name: string } };
type SettleBody = { receipt?: string; receipts?: string[] } & NackOptions;

/** A delivered message as the HTTP API answers it. */
type JsonMessage = Record<string, unknown>;

export function registerQueueRoutes(
  app: FastifyInstance,
  broker: QueueCapable,
  receipts: ReceiptBook,
  clock: Clock,
  idleTimeoutMs: number,
): void {
  const tags = ['queues'];
  app.get('/queues', { schema: { tags } }, async () => ({ queues: await broker.listQueues() }));

  app.post<{ Body: QueueOptions & { name: string } }>(
    '/queues',
    { schema: { tags, body: createQueueBody } },
    async (req, reply) => {
      const { name, ...options } = req.body;
      reply.code(201);
      return broker.createQueue(name, options);
    },
  );

  app.get<NameParams>('/queues/:name', { schema: { tags, params: nameParams } }, async (req) =>
    broker.describeQueue(req.params.name),
  );

  app.delete<NameParams>('/queues/:name', { schema: { tags, params: nameParams } }, async (req, reply) => {
    await broker.deleteQueue(req.params.name);
    reply.code(204);
  });

  app.post<NameParams & { Body: PublishBody }>(
    '/queues/:name/messages',
    { schema: { tags, params: nameParams, body: publishSchema } },
    async (req, reply) => {
      await broker.describeQueue(req.params.name);
      const result = await publishBody(broker, req.params.name, req.body);
      reply.code(201);
      return result;
    },
  );

  // Receive answers by attempt id (as SQS's ReceiveRequestAttemptId), for brokers that settle by
  // receipt: elsewhere a retry could not extend the first answer's leases.
  // Counted as twice its JSON text: strings of two-byte characters, and the objects around them.
  const attempts = new ReceiveAttempts<JsonMessage>(clock, (m) => 2 * JSON.stringify(m).length);
  const extendable =
    typeof broker.extendVisibilityReceipt === 'function' &&
    typeof broker.ackReceipt === 'function' &&
    typeof broker.nackReceipt === 'function';

  /** The lease a receive asks for: its visibility timeout, else its queue's. */
  const leaseMsOf = async (name: string, options: ReceiveOptions): Promise<number> =>
    options.visibilityTimeoutMs ?? (await broker.describeQueue(name)).options.visibilityTimeoutMs;

  /** A receive that is not a retry; with an attempt id, its answer is remembered. */
  const receiveNew = async (
    name: string,
    options: ReceiveOptions,
    socket: { destroyed: boolean },
    attemptId: string | undefined,
  ): Promise<{ messages: JsonMessage[] }> => {
    const messages = await broker.receive(name, options);
    if (socket.destroyed) {
      // The client gave up on the long poll: hand the messages back now (uncounted: never
      // delivered) instead of after the lease.
      await handBack(broker, name, messages);
      return { messages: [] };
    }
    // The embedded broker settles by receipt itself; other Wharf implementations need the book.
    if (!broker.ackReceipt || !broker.nackReceipt) {
      const leaseMs = await leaseMsOf(name, options);
      for (const m of messages) receipts.remember(name, m, leaseMs);
    }
    const json = messages.map((m) => toJsonMessage(m as never));
    if (attemptId !== undefined)
      attempts.remember(name, attemptId, { items: json, receipts: messages.map((m) => m.receipt) });
    return { messages: json };
  };

  app.post<NameParams & { Body: (ReceiveOptions & { attemptId?: string }) | undefined }>(
    '/queues/:name/receive',
    { schema: { tags, params: nameParams, body: receiveBody } },
    async (req, reply) => {
      const name = req.params.name;
      const { attemptId: askedAttempt, ...options } = req.body ?? {};
      checkReceive(options);
      keepOpenWhileWaiting(req.raw.socket, reply.raw, idleTimeoutMs);
      const attemptId = extendable ? askedAttempt : undefined;
      if (attemptId === undefined) return receiveNew(name, options, req.raw.socket, undefined);
      // A retry gets the same messages where their leases still hold, each lease starting again.
      let leaseMs: Promise<number> | undefined;
      const extend = async (receipt: string): Promise<void> =>
        broker.extendVisibilityReceipt!(name, receipt, await (leaseMs ??= leaseMsOf(name, options)));
      return attempts.serve(
        name,
        attemptId,
        extend,
        (again) => ({ messages: [...again.items] }),
        () => receiveNew(name, options, req.raw.socket, attemptId),
      );
    },
  );

  app.post<NameParams & { Body: SettleBody }>(
    '/queues/:name/ack',
    { schema: { tags, params: nameParams, body: ackBody } },
    async (req) => {
      const name = req.params.name;
      return settleByReceipt(broker, name, req.body, 'acked', async (receipt) => {
        if (broker.ackReceipt) await broker.ackReceipt(name, receipt);
        else await receipts.ack(name, receipt);
      });
    },
  );

  app.post<NameParams & { Body: SettleBody }>(
    '/queues/:name/nack',
    { schema: { tags, params: nameParams, body: nackBody } },
    async (req) => {
      const name = req.params.name;
      const { receipt: _r, receipts: _rs, ...options } = req.body;
      return settleByReceipt(broker, name, req.body, 'nacked', async (receipt) => {
        if (broker.nackReceipt) await broker.nackReceipt(name, receipt, options);
        else await receipts.nack(name, receipt, options);
      });
    },
  );
}

/**
 * A long poll's wait is not idleness: while the receive runs, the socket's idle timeout allows for
 * the longest wait (twice: a retry may first wait for its attempt's earlier receive), so an
 * idleTimeoutMs below maxWaitMs does not cut an answer off; it is restored once the answer is sent.
 */
function keepOpenWhileWaiting(
  socket: { setTimeout?: (ms: number) => unknown },
  response: { once(event: 'close', listener: () => void): unknown },
  idleTimeoutMs: number,
): void {
  if (typeof socket.setTimeout !== 'function') return; // an injected request has no real socket
  socket.setTimeout(Math.min(idleTimeoutMs + 2 * LIMITS.maxWaitMs, SERVER_LIMITS.maxIdleTimeoutMs));
  response.once('close', () => socket.setTimeout!(idleTimeoutMs));
}

function checkReceive(o: ReceiveOptions): void {
  if (o.max !== undefined && o.max > LIMITS.maxReceiveMessages) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `max ${o.max} is above maxReceiveMessages (${LIMITS.maxReceiveMessages}); ask for fewer`,
    );
  }
  if (o.waitMs !== undefined && o.waitMs > LIMITS.maxWaitMs) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `waitMs ${o.waitMs} is above maxWaitMs (${LIMITS.maxWaitMs}); poll again instead`,
    );
  }
}

/** One receipt's outcome in a batch: settled, or left as it was with the error that says why. */
type ReceiptResult =
  { receipt: string; ok: true } | { receipt: string; ok: false; error: ReturnType<WharfError['toJSON']> };

/**
 * Settles by receipt. `{ receipt }` alone answers { [countField]: 1 } or fails with that receipt's
 * error. A batch (`receipts`) fails as a whole only for what concerns the request (more than
 * maxReceiptsPerRequest receipts, a repeated receipt, a missing queue; bad options are refused by
 * the schema), before anything is settled;
 * then each receipt is settled on its own and the answer, 200 whatever each outcome (as SQS
 * DeleteMessageBatch), says which ones were settled and why the others were not.
 */
async function settleByReceipt(
  broker: QueueCapable,
  queue: string,
  body: SettleBody,
  countField: 'acked' | 'nacked',
  settle: (receipt: string) => Promise<void>,
): Promise<Record<string, unknown>> {
  if (body.receipts === undefined) {
    if (body.receipt === undefined) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        'no receipt given: send { "receipt": "..." } or { "receipts": ["..."] } from a receive',
      );
    }
    await settle(body.receipt);
    return { [countField]: 1 };
  }
  const list = body.receipt !== undefined ? [body.receipt, ...body.receipts] : body.receipts;
  checkCount(list);
  checkDistinct(list);
  await broker.describeQueue(queue);
  const results: ReceiptResult[] = [];
  let settled = 0;
  for (const receipt of list) {
    try {
      await settle(receipt);
      results.push({ receipt, ok: true });
      settled++;
    } catch (err) {
      results.push({ receipt, ok: false, error: toWharfError(err).toJSON() });
    }
  }
  return { [countField]: settled, failed: list.length - settled, results };
}

/** A batch is at most one receive's worth of receipts: its work and its answer stay bounded. */
function checkCount(list: readonly string[]): void {
  if (list.length > SERVER_LIMITS.maxReceiptsPerRequest) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `${list.length} receipts in one request is above maxReceiptsPerRequest (${SERVER_LIMITS.maxReceiptsPerRequest}); ` +
        'split them across requests (nothing was settled)',
    );
  }
}

/** A receipt twice in one batch would have two results, one settled and one not: refused, as SQS refuses repeated entry ids. */
function checkDistinct(list: readonly string[]): void {
  const seen = new Set<string>();
  for (const receipt of list) {
    if (seen.has(receipt)) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `receipt ${JSON.stringify(receipt)} is given twice; send each receipt once (nothing was settled)`,
      );
    }
    seen.add(receipt);
  }
}
