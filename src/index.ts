// The package face of Wharf: `import { Broker, WharfError } from 'wharf'`.
export { Broker, HandlerOutcome } from './broker/index.js';
export type * from './broker/types.js';
export type * from './broker/queue-types.js';
export type * from './broker/exchange-types.js';
export type { Wharf, Wharf_Core, Stats } from './broker/wharf.js';
export { WharfError, ERROR_CODES, isWharfError } from './common/index.js';
export type { ErrorCode, Clock } from './common/index.js';
export { ManualClock, systemClock } from './common/index.js';
// Patterns (outbox, idempotent consumer): pg and better-sqlite3 are only type imports there, so they load lazily with the user's own driver.
export * from './patterns/index.js';
// Remote client: the same `Wharf` interface over the native protocol.
export { connect } from './client/index.js';
