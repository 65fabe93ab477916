// Transactional outbox on SQLite (better-sqlite3): add() inserts inside the caller's db.transaction;
// the relay polls at a short interval, and add() wakes relays in the same process right after commit.
import type Database from 'better-sqlite3';
import { WharfError } from '../../common/index.js';
import type { WharfPublisher } from '../publisher.js';
import { decodeOutboxMessage, encodeOutboxMessage, outboxMaxMessageBytes } from './codec.js';
import { failedRowsLimit } from './failed-rows.js';
import { OutboxRelay, type OutboxRelayOptions } from './relay.js';
import { Wake } from './wake.js';
import type { FailedOutboxRow, OutboxFailure, OutboxMessage, OutboxRow, OutboxSource } from './types.js';

export interface SqliteOutboxOptions {
  /** Default "wharf_outbox". */
  table?: string;
  /** Largest message add() accepts, encoded (default 1 MiB, the broker's default): your targets' maxMessageBytes. */
  maxMessageBytes?: number;
}

/** Columns added after the first release: a table made before them gets them at open. */
const FAILURE_COLUMNS = [
  ['failed_at', 'INTEGER'],
  ['error', 'TEXT'],
] as const;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export class SqliteOutbox {
  readonly table: string;
  readonly maxMessageBytes: number;
  private readonly waiters = new Set<() => void>();
  private wakeScheduled = false;

  /** Creates the table if missing, and adds the failure columns to a table made before they existed. */
  constructor(
    readonly db: Database.Database,
    options: SqliteOutboxOptions = {},
  ) {
    const table = options.table ?? 'wharf_outbox';
    if (!IDENTIFIER.test(table)) {
      throw new WharfError('INVALID_ARGUMENT', `outbox table ${JSON.stringify(table)} must match ${IDENTIFIER}`);
    }
    this.table = table;
    this.maxMessageBytes = outboxMaxMessageBytes(options.maxMessageBytes);
    db.exec(
      `CREATE TABLE IF NOT EXISTS "${table}" (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         destination TEXT NOT NULL,
         message TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         sent_at INTEGER,
         failed_at INTEGER,
         error TEXT
       );
       CREATE INDEX IF NOT EXISTS "${table}_pending" ON "${table}" (id) WHERE sent_at IS NULL;`,
    );
    const columns = new Set(
      (db.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>).map((c) => c.name),
    );
    for (const [name, type] of FAILURE_COLUMNS) {
      if (!columns.has(name)) db.exec(`ALTER TABLE "${table}" ADD COLUMN ${name} ${type}`);
    }
  }

  /**
   * Records a message; call it inside db.transaction(...) (or between BEGIN and COMMIT) so it commits
   * or rolls back with your own writes. Returns the row id.
   */
  add(tx: Database.Database, message: OutboxMessage): number {
    if (!tx.inTransaction) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        'outbox.add must run inside a transaction: wrap your writes and the add() in db.transaction(() => { ... })',
      );
    }
    const [to, json] = encodeOutboxMessage(message, this.maxMessageBytes);
    const info = tx
      .prepare(`INSERT INTO "${this.table}" (destination, message, created_at) VALUES (?, ?, ?)`)
      .run(to, json, Date.now());
    this.scheduleWake();
    return Number(info.lastInsertRowid);
  }

  /** Rows sent longer ago than olderThanMs are deleted; returns how many. */
  prune(olderThanMs: number): number {
    return this.db
      .prepare(`DELETE FROM "${this.table}" WHERE sent_at IS NOT NULL AND sent_at < ?`)
      .run(Date.now() - olderThanMs).changes;
  }

  /** Rows the relay set aside as failed, oldest first (at most limit, default 100). */
  listFailed(limit?: number): FailedOutboxRow[] {
    const rows = this.db
      .prepare(
        `SELECT id, destination, message, error, failed_at FROM "${this.table}"
          WHERE failed_at IS NOT NULL AND sent_at IS NULL ORDER BY id LIMIT ?`,
      )
      .all(failedRowsLimit(limit)) as Array<{
      id: number;
      destination: string;
      message: string;
      error: string;
      failed_at: number;
    }>;
    return rows.map((r) => ({
      id: r.id,
      to: r.destination,
      message: decodeOutboxMessage(r.message),
      error: r.error,
      failedAt: new Date(r.failed_at),
    }));
  }

  /**
   * Failed rows go back to the relay (after you fixed their cause: created the partition, raised
   * maxMessageBytes). They are published after rows already sent, whatever their ids. Returns how many.
   */
  retryFailed(ids: number[]): number {
    const stmt = this.db.prepare(
      `UPDATE "${this.table}" SET failed_at = NULL, error = NULL WHERE id = ? AND failed_at IS NOT NULL AND sent_at IS NULL`,
    );
    const count = this.db.transaction(() => ids.reduce((n, id) => n + stmt.run(id).changes, 0))();
    this.scheduleWake();
    return count;
  }

  /** Deletes failed rows (only those: a pending or sent row is left alone). Returns how many. */
  deleteFailed(ids: number[]): number {
    const stmt = this.db.prepare(
      `DELETE FROM "${this.table}" WHERE id = ? AND failed_at IS NOT NULL AND sent_at IS NULL`,
    );
    return this.db.transaction(() => ids.reduce((n, id) => n + stmt.run(id).changes, 0))();
  }

  /** A relay for this table. Run one relay per database file: SQLite has no cross-process lock for it here. */
  relay(publisher: WharfPublisher, options: OutboxRelayOptions = {}): OutboxRelay {
    return new OutboxRelay(new SqliteOutboxSource(this), publisher, { pollIntervalMs: 50, ...options });
  }

  /** @internal The relay waits here. */
  onWake(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }

  // A synchronous db.transaction has committed by the time a setImmediate callback runs.
  private scheduleWake(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      for (const fn of [...this.waiters]) fn();
    });
  }
}

class SqliteOutboxSource implements OutboxSource {
  readonly name: string;
  private readonly unsubscribe: () => void;
  private readonly wakeup = new Wake();

  constructor(private readonly outbox: SqliteOutbox) {
    this.name = outbox.table;
    this.unsubscribe = outbox.onWake(() => {
      this.wakeup.notify();
    });
  }

  async open(): Promise<void> {}

  async fetchPending(limit: number): Promise<OutboxRow[]> {
    this.wakeup.clear();
    // The relay shares the user's connection: inside their open transaction it would see (and
    // publish) rows that may still roll back. Skip this round; the next poll comes soon.
    if (this.outbox.db.inTransaction) return [];
    const rows = this.outbox.db
      .prepare(
        `SELECT id, destination, message FROM "${this.outbox.table}"
          WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT ?`,
      )
      .all(limit) as Array<{ id: number; destination: string; message: string }>;
    return rows.map((r) => ({ id: r.id, to: r.destination, message: decodeOutboxMessage(r.message) }));
  }

  async markSent(ids: number[]): Promise<void> {
    const stmt = this.outbox.db.prepare(`UPDATE "${this.outbox.table}" SET sent_at = ? WHERE id = ?`);
    const now = Date.now();
    this.outbox.db.transaction(() => {
      for (const id of ids) stmt.run(now, id);
    })();
  }

  async markFailed(failures: OutboxFailure[]): Promise<void> {
    const stmt = this.outbox.db.prepare(`UPDATE "${this.outbox.table}" SET failed_at = ?, error = ? WHERE id = ?`);
    const now = Date.now();
    this.outbox.db.transaction(() => {
      for (const f of failures) stmt.run(now, f.error, f.id);
    })();
  }

  waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void> {
    return this.wakeup.wait(timeoutMs, signal);
  }

  async close(): Promise<void> {
    this.unsubscribe();
  }
}
