// Processed ids in PostgreSQL. runOnce inserts the id first in a transaction and runs the handler with
// that client: a concurrent duplicate blocks on the row until the first commits, then is skipped;
// a failing handler rolls back both its writes and the record.
import type pg from 'pg';
import { WharfError } from '../../common/index.js';
import type { ProcessedStore } from './types.js';

export interface PostgresProcessedStoreOptions {
  consumer?: string;
  schema?: string;
  table?: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export class PostgresProcessedStore implements ProcessedStore<pg.PoolClient> {
  private readonly table: string;
  private readonly consumer: string;

  private constructor(
    private readonly pool: pg.Pool,
    table: string,
    consumer: string,
  ) {
    this.table = table;
    this.consumer = consumer;
  }

  /** Creates the table if missing. */
  static async open(pool: pg.Pool, options: PostgresProcessedStoreOptions = {}): Promise<PostgresProcessedStore> {
    const schema = options.schema ?? 'public';
    const table = options.table ?? 'wharf_processed';
    for (const [what, v] of [
      ['schema', schema],
      ['table', table],
    ] as const) {
      if (!IDENTIFIER.test(v))
        throw new WharfError(
          'INVALID_ARGUMENT',
          `processed-store ${what} ${JSON.stringify(v)} must match ${IDENTIFIER}`,
        );
    }
    const qualified = `"${schema}"."${table}"`;
    await pool.query(
      `CREATE TABLE IF NOT EXISTS ${qualified} (
         consumer text NOT NULL, message_key text NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (consumer, message_key))`,
    );
    return new PostgresProcessedStore(pool, qualified, options.consumer ?? 'default');
  }

  async runOnce(key: string, fn: (tx: pg.PoolClient) => Promise<void> | void): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const inserted = await client.query(
        `INSERT INTO ${this.table} (consumer, message_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        [this.consumer, key],
      );
      if (inserted.rowCount === 0) {
        await client.query('ROLLBACK');
        client.release();
        return false;
      }
      await fn(client);
      await client.query('COMMIT');
      client.release();
      return true;
    } catch (err) {
      // Roll back the handler's writes with the record; a connection that cannot roll back is discarded.
      try {
        await client.query('ROLLBACK');
        client.release();
      } catch (rollbackErr) {
        client.release(rollbackErr instanceof Error ? rollbackErr : true);
      }
      throw err;
    }
  }

  async has(key: string): Promise<boolean> {
    const r = await this.pool.query(`SELECT 1 FROM ${this.table} WHERE consumer = $1 AND message_key = $2`, [
      this.consumer,
      key,
    ]);
    return (r.rowCount ?? 0) > 0;
  }

  /** Forgets records older than olderThanMs. */
  async prune(olderThanMs: number): Promise<number> {
    const r = await this.pool.query(
      `DELETE FROM ${this.table} WHERE consumer = $1 AND processed_at < now() - ($2::double precision * interval '1 millisecond')`,
      [this.consumer, olderThanMs],
    );
    return r.rowCount ?? 0;
  }

  async close(): Promise<void> {}
}
