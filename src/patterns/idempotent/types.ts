// The one interface every processed-id store implements (SQLite, PostgreSQL, the broker, memory).

/**
 * Records which message keys a consumer has processed. runOnce runs fn unless key is recorded,
 * and records key only if fn succeeds. Stores that can, run fn inside the same database
 * transaction as the record (tx), so the handler's own writes and the record commit together.
 */
export interface ProcessedStore<Tx = void> {
  /** true: fn ran and the key is now recorded; false: the key was already recorded and fn was skipped. fn's error is rethrown and nothing is recorded. */
  runOnce(key: string, fn: (tx: Tx) => Promise<void> | void): Promise<boolean>;
  /** Was key recorded? */
  has(key: string): Promise<boolean>;
  close(): Promise<void>;
}
