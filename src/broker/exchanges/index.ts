// Exchanges (RabbitMQ / SNS model), atomic multi-target routing and transactions.
export { openExchanges, type ExchangesModule } from './open.js';
export type { QueueSide, TopicSide } from './broker-host.js';
export { EXCHANGE_TYPES } from './routers.js';
export { compileFilterPolicy, FILTER_POLICY_LIMITS } from './filter-policy.js';
export { BINDING_LIMITS } from './binding.js';
export { collectTransaction, MAX_TRANSACTION_OPS } from './transaction.js';
export { INTENT_JOURNAL_COMPACT_BYTES } from './intent-journal.js';
