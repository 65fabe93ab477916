// Shapes shared by the PostgreSQL and SQLite outboxes and their relay.
import type { MessageInput } from '../../broker/index.js';

/** A message to publish later, once the surrounding database transaction commits. */
export interface OutboxMessage extends MessageInput {
  /** Topic, queue or exchange the relay publishes to. */
  to: string;
}

/** One stored outbox row, as the relay reads it back (in id order). */
export interface OutboxRow {
  id: number;
  to: string;
  message: MessageInput;
}

/**
 * A row the broker refused for good (INVALID_ARGUMENT, MESSAGE_TOO_LARGE): set aside by the relay,
 * kept for inspection and never published until retried.
 */
export interface FailedOutboxRow extends OutboxRow {
  /** The broker's refusal, as "CODE: message". */
  error: string;
  failedAt: Date;
}

/** A row to set aside, and why. */
export interface OutboxFailure {
  id: number;
  error: string;
}

/** Where a relay reads pending rows from: one implementation per database. */
export interface OutboxSource {
  /** Identifies the outbox (used for the default relay id). */
  readonly name: string;
  /**
   * Called before the first fetch; may wait (e.g. to become the single active relay). Called again
   * after it throws (the relay backs off and retries), so a failed open must leave it callable.
   */
  open(signal: AbortSignal): Promise<void>;
  /** Oldest rows neither sent nor failed first, at most limit. */
  fetchPending(limit: number): Promise<OutboxRow[]>;
  markSent(ids: number[]): Promise<void>;
  /** Sets rows aside: fetchPending no longer returns them. */
  markFailed(failures: OutboxFailure[]): Promise<void>;
  /** Resolves when new rows may be there (a notification) or after timeoutMs, whichever is first. */
  waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
