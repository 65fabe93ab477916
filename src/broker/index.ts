// Broker layer: the embedded Broker facade and the public types of topics, queues and exchanges.
// Server and client layers import from here only.
export { Broker } from './broker.js';
export type { BrokerContext, KindManager, ResolvedBrokerOptions } from './context.js';
export { BROKER_DEFAULTS } from './context.js';
export type { CatalogEntry, CatalogKind } from './catalog.js';
export {
  decodeMessage,
  encodeMessage,
  newMessageId,
  RESERVED_HEADER_PREFIX,
  H_ID,
  H_TYPE,
  H_CONTENT_TYPE,
  H_PRIORITY,
  H_GROUP_ID,
  H_DEDUP_ID,
  H_ROUTING_KEY,
} from './message-codec.js';
export { checkProducerFields } from './idempotence.js';
export type { LogRecord } from '../storage/index.js';
export { RateMeter } from './rate-meter.js';
export { HandlerOutcome } from './queues/handler-outcome.js';
export { checkConsumeLimits, checkReceiveLimits, type ReceiveLimits } from './queues/read-limits.js';
export { murmur2, partitionForKey } from './topics/partitioner.js';
export { parseStartPosition } from './start-position.js';
export { validateStartPosition } from './topics/subscription.js';
export { collectTransaction } from './exchanges/index.js';
export type * from './types.js';
export type * from './queue-types.js';
export type * from './exchange-types.js';
// The field names of each options type; any other field is refused (INVALID_ARGUMENT).
export { BROKER_OPTION_FIELDS, SUBSCRIBE_OPTION_FIELDS, TOPIC_OPTION_FIELDS } from './types.js';
export {
  CONSUME_OPTION_FIELDS,
  NACK_OPTION_FIELDS,
  QUEUE_OPTION_FIELDS,
  RATE_LIMIT_FIELDS,
  RECEIVE_OPTION_FIELDS,
  REDRIVE_OPTION_FIELDS,
  RETRY_POLICY_FIELDS,
} from './queue-types.js';
export { BINDING_OPTION_FIELDS, EXCHANGE_OPTION_FIELDS } from './exchange-types.js';
export type * from './wharf.js';
