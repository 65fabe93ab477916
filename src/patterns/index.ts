// Patterns on top of Wharf: transactional outbox (PostgreSQL, SQLite), idempotent consumer, and their stores.
export type { WharfPublisher } from './publisher.js';
export type { FailedOutboxRow, OutboxMessage, OutboxRow } from './outbox/types.js';
export { OutboxRelay, type OutboxRelayOptions } from './outbox/relay.js';
export {
  PostgresOutbox,
  type PostgresOutboxOptions,
  type PostgresOutboxRelayOptions,
  type PgQueryable,
} from './outbox/postgres-outbox.js';
export { SqliteOutbox, type SqliteOutboxOptions } from './outbox/sqlite-outbox.js';
export type { ProcessedStore } from './idempotent/types.js';
export { idempotent, type IdempotentOptions } from './idempotent/idempotent.js';
export { MemoryProcessedStore } from './idempotent/memory-store.js';
export { BrokerProcessedStore, type BrokerProcessedStoreOptions } from './idempotent/broker-store.js';
export { SqliteProcessedStore, type SqliteProcessedStoreOptions } from './idempotent/sqlite-store.js';
export { PostgresProcessedStore, type PostgresProcessedStoreOptions } from './idempotent/postgres-store.js';
