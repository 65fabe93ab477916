// Admin ops: names plus JSON options in, JSON results out. The broker validates every option, so
// a wrong type in the JSON is the broker's INVALID_ARGUMENT, exactly as embedded.
import {
  OP,
  decodeEmpty,
  decodeName,
  decodeNameOptions,
  encodeJsonResult,
  type BindingOptions,
  type BindingTarget,
  type ExchangeOptions,
  type QueueOptions,
  type RedriveOptions,
  type TopicOptions,
  type Wharf,
} from '../../../protocol/index.js';
import { checkOptionFields } from '../../../common/index.js';
import type { Connection, OpHandler } from '../connection.js';

type Options = Record<string, unknown> | undefined;

function asOptions(v: unknown): Options {
  return v === null || v === undefined ? undefined : (v as Record<string, unknown>);
}

function jsonOp(run: (b: Wharf, name: string, options: Options) => Promise<unknown>, withOptions: boolean): OpHandler {
  return async (conn: Connection, r, id) => {
    const req = withOptions ? decodeNameOptions(r) : { ...decodeName(r), options: undefined };
    const result = await run(conn.broker, req.name, asOptions(req.options));
    conn.send(OP.JSON_RESULT, id, (w) => encodeJsonResult(w, result));
  };
}

/** BIND and UNBIND carry { target, options }; any other field is refused, as in an options object. */
function bindingArgs(o: Options): [BindingTarget, BindingOptions | undefined] {
  checkOptionFields(
    o,
    ['target', 'options'],
    'binding request',
    "{ target: { queue: 'q' }, options: { pattern: 'a.*' } }",
  );
  const { target, options } = o ?? {}; // checked: an object
  return [target as BindingTarget, options as BindingOptions | undefined];
}

function okOp(run: (b: Wharf, name: string) => Promise<void>): OpHandler {
  return async (conn, r, id) => {
    const { name } = decodeName(r);
    await run(conn.broker, name);
    conn.send(OP.OK, id);
  };
}

function listOp(run: (b: Wharf) => Promise<unknown>): OpHandler {
  return async (conn, r, id) => {
    decodeEmpty(r);
    const result = await run(conn.broker);
    conn.send(OP.JSON_RESULT, id, (w) => encodeJsonResult(w, result));
  };
}

export const adminHandlers: Array<[number, OpHandler]> = [
  [OP.CREATE_TOPIC, jsonOp((b, n, o) => b.createTopic(n, o as TopicOptions), true)],
  [OP.DELETE_TOPIC, okOp((b, n) => b.deleteTopic(n))],
  [OP.LIST_TOPICS, listOp((b) => b.listTopics())],
  [OP.DESCRIBE_TOPIC, jsonOp((b, n) => b.describeTopic(n), false)],
  [OP.CREATE_QUEUE, jsonOp((b, n, o) => b.createQueue(n, o as QueueOptions), true)],
  [OP.DELETE_QUEUE, okOp((b, n) => b.deleteQueue(n))],
  [OP.PURGE_QUEUE, jsonOp((b, n) => b.purgeQueue(n), false)],
  [OP.LIST_QUEUES, listOp((b) => b.listQueues())],
  [OP.DESCRIBE_QUEUE, jsonOp((b, n) => b.describeQueue(n), false)],
  [OP.STATS, jsonOp((b, n) => b.stats(n), false)],
  [OP.REDRIVE, jsonOp((b, n, o) => b.redrive(n, o as RedriveOptions), true)],
  [OP.CREATE_EXCHANGE, jsonOp((b, n, o) => b.createExchange(n, o as unknown as ExchangeOptions), true)],
  [OP.DELETE_EXCHANGE, okOp((b, n) => b.deleteExchange(n))],
  [OP.LIST_EXCHANGES, listOp((b) => b.listExchanges())],
  [OP.DESCRIBE_EXCHANGE, jsonOp((b, n) => b.describeExchange(n), false)],
  [OP.BIND, jsonOp((b, n, o) => b.bind(n, ...bindingArgs(o)), true)],
  [OP.UNBIND, jsonOp(async (b, n, o) => (await b.unbind(n, ...bindingArgs(o))) ?? null, true)],
  [OP.LIST_BINDINGS, jsonOp((b, n) => b.listBindings(n === '' ? undefined : n), false)],
];
