// /queues routes: create, list, describe, delete, publish, receive (long poll) and ack/nack by receipt.
import type { FastifyInstance } from 'fastify';
import { LIMITS, SERVER_LIMITS, WharfError, type Clock } from '../../common/index.js';
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
      const settled = await settleAll(receiptsOf(req.body), async (receipt) => {
        if (broker.ackReceipt) await broker.ackReceipt(name, receipt);
        else await receipts.ack(name, receipt);
      });
      return { acked: settled };
    },
  );

  app.post<NameParams & { Body: SettleBody }>(
    '/queues/:name/nack',
    { schema: { tags, params: nameParams, body: nackBody } },
    async (req) => {
      const name = req.params.name;
      const { receipt: _r, receipts: _rs, ...options } = req.body;
      const settled = await settleAll(receiptsOf(req.body), async (receipt) => {
        if (broker.nackReceipt) await broker.nackReceipt(name, receipt, options);
        else await receipts.nack(name, receipt, options);
      });
      return { nacked: settled };
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

function receiptsOf(body: SettleBody): string[] {
  const list = [...(body.receipt !== undefined ? [body.receipt] : []), ...(body.receipts ?? [])];
  if (list.length === 0) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      'no receipt given: send { "receipt": "..." } or { "receipts": ["..."] } from a receive',
    );
  }
  return list;
}

/** Settles every receipt; when some fail, reports the first failure and how many were settled. */
async function settleAll(list: string[], settle: (receipt: string) => Promise<void>): Promise<number> {
  let settled = 0;
  const failed: Array<{ receipt: string; code: string }> = [];
  let first: WharfError | null = null;
  for (const receipt of list) {
    try {
      await settle(receipt);
      settled++;
    } catch (err) {
      const e = err instanceof WharfError ? err : new WharfError('INTERNAL', String(err), { cause: err });
      first ??= e;
      failed.push({ receipt, code: e.code });
    }
  }
  if (first) {
    if (list.length === 1) throw first;
    throw new WharfError(first.code, `${first.message} (${settled} of ${list.length} settled)`, {
      details: { settled, failed },
    });
  }
  return settled;
}
