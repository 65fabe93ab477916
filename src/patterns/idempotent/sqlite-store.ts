// Processed ids in SQLite (better-sqlite3). The handler runs inside the transaction that records the id,
// so its writes to the same database and the record commit together (effectively exactly-once).
import type Database from 'better-sqlite3';
import { WharfError } from '../../common/index.js';
import { KeyLock } from './key-lock.js';
import type { ProcessedStore } from './types.js';

export interface SqliteProcessedStoreOptions {
  /** Separates consumers sharing a table: each processes every message once. Default "default". */
  consumer?: string;
  table?: string;
}

export class SqliteProcessedStore implements ProcessedStore<Database.Database> {
  private readonly table: string;
  private readonly consumer: string;
  // One connection runs one transaction at a time: handlers are serialised (a global lock, not per key).
  private readonly lock = new KeyLock();

  constructor(
    private readonly db: Database.Database,
    options: SqliteProcessedStoreOptions = {},
  ) {
    this.table = options.table ?? 'wharf_processed';
    this.consumer = options.consumer ?? 'default';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(this.table)) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `processed-store table ${JSON.stringify(this.table)} is not a plain SQL identifier`,
      );
    }
    db.exec(
      `CREATE TABLE IF NOT EXISTS "${this.table}" (
         consumer TEXT NOT NULL, message_key TEXT NOT NULL, processed_at INTEGER NOT NULL,
         PRIMARY KEY (consumer, message_key))`,
    );
  }

  runOnce(key: string, fn: (tx: Database.Database) => Promise<void> | void): Promise<boolean> {
    return this.lock.with('tx', async () => {
      if (await this.has(key)) return false;
      this.db.exec('BEGIN IMMEDIATE');
      try {
        await fn(this.db);
        this.db
          .prepare(`INSERT INTO "${this.table}" (consumer, message_key, processed_at) VALUES (?, ?, ?)`)
          .run(this.consumer, key, Date.now());
        this.db.exec('COMMIT');
        return true;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async has(key: string): Promise<boolean> {
    const row = this.db
      .prepare(`SELECT 1 FROM "${this.table}" WHERE consumer = ? AND message_key = ?`)
      .get(this.consumer, key);
    return row !== undefined;
  }

  /** Forgets records older than olderThanMs (keep it longer than any redelivery can take). */
  prune(olderThanMs: number): number {
    return this.db
      .prepare(`DELETE FROM "${this.table}" WHERE consumer = ? AND processed_at < ?`)
      .run(this.consumer, Date.now() - olderThanMs).changes;
  }

  async close(): Promise<void> {}
}
