// Transactional outbox on PostgreSQL: add() inserts in the caller's transaction and NOTIFYs on commit;
// the relay LISTENs for low latency, polls as a fallback, and holds an advisory lock so that only one
// relay publishes a table at a time (which is what keeps publication in row order).
import type pg from 'pg';
import { WharfError } from '../../common/index.js';
import type { WharfPublisher } from '../publisher.js';
import { decodeOutboxMessage, encodeOutboxMessage, outboxMaxMessageBytes } from './codec.js';
import { failedRowsLimit } from './failed-rows.js';
import { connectWithin } from './pg-connect.js';
import { OutboxRelay, sleep, type OutboxRelayOptions } from './relay.js';
import { Wake } from './wake.js';
import type { FailedOutboxRow, OutboxFailure, OutboxMessage, OutboxRow, OutboxSource } from './types.js';

/** Anything that runs a query: a pg.PoolClient inside BEGIN, a pg.Client, or a pg.Pool (for install). */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

export interface PostgresOutboxOptions {
  /** Default "public". */
  schema?: string;
  /** Default "wharf_outbox". */
  table?: string;
  /** NOTIFY channel (default "wharf_outbox"); the payload names the table, so tables can share it. */
  channel?: string;
  /** Largest message add() accepts, encoded (default 1 MiB, the broker's default): your targets' maxMessageBytes. */
  maxMessageBytes?: number;
}

export interface PostgresOutboxRelayOptions extends OutboxRelayOptions {
  /**
   * Longest wait for a connection from the pool, for each of the relay's lock attempts and queries
   * (default 10 s). Past it the attempt fails with TIMEOUT (reported through onError and retried),
   * and stop() waits no longer than this for a connection on its way.
   */
  connectTimeoutMs?: number;
}

/** Default connectTimeoutMs: a pool busy for longer is reported; stop() returns within it. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Longest connectTimeoutMs: a Node timer set past 2^31 - 1 ms fires at once. */
const MAX_CONNECT_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * How long the relay waits for the table lock to add the failure columns to a table made before
 * they existed: ALTER TABLE queues every insert behind it, so it gives up (and retries) instead of
 * stalling the application behind a long transaction.
 */
const UPGRADE_LOCK_TIMEOUT_MS = 2_000;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function identifier(value: string, what: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new WharfError('INVALID_ARGUMENT', `outbox ${what} ${JSON.stringify(value)} must match ${IDENTIFIER}`);
  }
  return `"${value}"`;
}

export class PostgresOutbox {
  readonly qualifiedTable: string;
  readonly channel: string;
  /** Table identity for notifications and the relay lock. */
  readonly name: string;
  readonly maxMessageBytes: number;

  constructor(options: PostgresOutboxOptions = {}) {
    const schema = options.schema ?? 'public';
    const table = options.table ?? 'wharf_outbox';
    this.qualifiedTable = `${identifier(schema, 'schema')}.${identifier(table, 'table')}`;
    this.channel = identifier(options.channel ?? 'wharf_outbox', 'channel');
    this.name = `${schema}.${table}`;
    this.maxMessageBytes = outboxMaxMessageBytes(options.maxMessageBytes);
  }

  /**
   * Creates the table and its index if missing, and adds the failure columns to a table made before
   * they existed. Run once at deploy/startup.
   */
  async install(db: PgQueryable): Promise<void> {
    await db.query(
      `CREATE TABLE IF NOT EXISTS ${this.qualifiedTable} (
         id bigserial PRIMARY KEY,
         destination text NOT NULL,
         message jsonb NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now(),
         sent_at timestamptz,
         failed_at timestamptz,
         error text
       )`,
    );
    if (!(await this.hasFailureColumns(db))) await db.query(this.addFailureColumns());
    const index = identifier(`${this.name.replace(/\W/g, '_').slice(0, 50)}_pending`, 'index');
    await db.query(`CREATE INDEX IF NOT EXISTS ${index} ON ${this.qualifiedTable} (id) WHERE sent_at IS NULL`);
  }

  /**
   * @internal For the relay at open, on a connection of its own (which it destroys if this throws: its
   * transaction state is unknown): the failure columns, added under a short lock timeout so an upgrade
   * never stalls the application's inserts for long (a timeout fails the open, which the relay retries).
   */
  async upgrade(client: pg.PoolClient): Promise<void> {
    if (await this.hasFailureColumns(client)) return;
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = ${UPGRADE_LOCK_TIMEOUT_MS}`);
    await client.query(this.addFailureColumns());
    await client.query('COMMIT');
  }

  /** Checked first: ALTER TABLE takes the table's strongest lock even when the columns are there. */
  private async hasFailureColumns(db: PgQueryable): Promise<boolean> {
    const result = await db.query(
      `SELECT count(*)::int AS c FROM pg_attribute
        WHERE attrelid = $1::regclass AND attname IN ('failed_at', 'error') AND NOT attisdropped`,
      [this.qualifiedTable],
    );
    return result.rows[0].c === 2;
  }

  private addFailureColumns(): string {
    return `ALTER TABLE ${this.qualifiedTable} ADD COLUMN IF NOT EXISTS failed_at timestamptz, ADD COLUMN IF NOT EXISTS error text`;
  }

  /**
   * Records a message in the caller's transaction (tx: a client after BEGIN). It is published only
   * if that transaction commits; NOTIFY is delivered at commit too. Returns the row id.
   */
  async add(tx: PgQueryable, message: OutboxMessage): Promise<number> {
    const [to, json] = encodeOutboxMessage(message, this.maxMessageBytes);
    const result = await tx.query(
      `INSERT INTO ${this.qualifiedTable} (destination, message) VALUES ($1, $2::jsonb) RETURNING id`,
      [to, json],
    );
    await tx.query(`SELECT pg_notify($1, $2)`, [this.channel.slice(1, -1), this.name]);
    return Number(result.rows[0].id);
  }

  /** Rows sent longer ago than olderThanMs are deleted; returns how many. */
  async prune(db: PgQueryable, olderThanMs: number): Promise<number> {
    const result = await db.query(
      `DELETE FROM ${this.qualifiedTable} WHERE sent_at IS NOT NULL AND sent_at < now() - ($1::double precision * interval '1 millisecond')`,
      [olderThanMs],
    );
    return result.rowCount ?? 0;
  }

  /** Rows the relay set aside as failed, oldest first (at most limit, default 100). */
  async listFailed(db: PgQueryable, limit?: number): Promise<FailedOutboxRow[]> {
    const result = await db.query(
      `SELECT id, destination, message, error, failed_at FROM ${this.qualifiedTable}
        WHERE failed_at IS NOT NULL AND sent_at IS NULL ORDER BY id LIMIT $1`,
      [failedRowsLimit(limit)],
    );
    return result.rows.map((r) => ({
      id: Number(r.id),
      to: r.destination as string,
      message: decodeOutboxMessage(r.message),
      error: r.error as string,
      failedAt: r.failed_at as Date,
    }));
  }

  /**
   * Failed rows go back to the relay (after you fixed their cause: created the partition, raised
   * maxMessageBytes). They are published after rows already sent, whatever their ids. Returns how many.
   */
  async retryFailed(db: PgQueryable, ids: number[]): Promise<number> {
    const result = await db.query(
      `UPDATE ${this.qualifiedTable} SET failed_at = NULL, error = NULL
        WHERE id = ANY($1::bigint[]) AND failed_at IS NOT NULL AND sent_at IS NULL`,
      [ids],
    );
    await db.query(`SELECT pg_notify($1, $2)`, [this.channel.slice(1, -1), this.name]);
    return result.rowCount ?? 0;
  }

  /** Deletes failed rows (only those: a pending or sent row is left alone). Returns how many. */
  async deleteFailed(db: PgQueryable, ids: number[]): Promise<number> {
    const result = await db.query(
      `DELETE FROM ${this.qualifiedTable} WHERE id = ANY($1::bigint[]) AND failed_at IS NOT NULL AND sent_at IS NULL`,
      [ids],
    );
    return result.rowCount ?? 0;
  }

  /** A relay publishing this table through publisher. Call start(); stop() when done. */
  relay(pool: pg.Pool, publisher: WharfPublisher, options: PostgresOutboxRelayOptions = {}): OutboxRelay {
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (!Number.isSafeInteger(connectTimeoutMs) || connectTimeoutMs < 1 || connectTimeoutMs > MAX_CONNECT_TIMEOUT_MS) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `outbox relay option connectTimeoutMs must be a whole number from 1 to ${MAX_CONNECT_TIMEOUT_MS}, got ${connectTimeoutMs}`,
      );
    }
    return new OutboxRelay(new PostgresOutboxSource(this, pool, connectTimeoutMs), publisher, options);
  }
}

class PostgresOutboxSource implements OutboxSource {
  readonly name: string;
  private listener: pg.PoolClient | null = null;
  private listenerLost = false;
  private upgraded = false;
  private readonly wakeup = new Wake();
  /** The lock connection's listeners, one pair per relay, so they can be taken off before the client goes back. */
  private readonly onListenerError = (): void => {
    this.listenerLost = true;
    this.wakeup.notify();
  };
  private readonly onNotification = (n: pg.Notification): void => {
    if (n.payload === this.name) this.wakeup.notify();
  };

  constructor(
    private readonly outbox: PostgresOutbox,
    private readonly pool: pg.Pool,
    private readonly connectTimeoutMs: number,
  ) {
    this.name = outbox.name;
  }

  /**
   * Waits until this relay holds the table's lock (another relay may be active: stand by). A failed
   * lock attempt (no connection, the database restarting) throws: the relay reports it and retries.
   */
  async open(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && !(await this.lead())) await sleep(500, signal);
    if (signal.aborted || this.upgraded) return;
    // Only the leader alters the table; a table from before the failure columns works from here on.
    await this.withConnection((client) => this.outbox.upgrade(client));
    this.upgraded = true;
  }

  async fetchPending(limit: number): Promise<OutboxRow[]> {
    // A lost lock connection means another relay may have taken over: publish only while leading.
    if (!(await this.lead())) return [];
    this.wakeup.clear();
    const result = await this.query(
      `SELECT id, destination, message FROM ${this.outbox.qualifiedTable}
        WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT $1`,
      [limit],
    );
    return result.rows.map((r) => ({
      id: Number(r.id),
      to: r.destination as string,
      message: decodeOutboxMessage(r.message),
    }));
  }

  /**
   * A dedicated connection LISTENs and holds a session advisory lock: if this process dies, the
   * connection drops and the lock passes to a standby. Returns whether this relay leads now.
   */
  private async lead(): Promise<boolean> {
    if (this.listener !== null && !this.listenerLost) return true;
    if (this.listener !== null) {
      this.releaseListener(this.listener, true);
      this.listener = null;
    }
    const client = await connectWithin(this.pool, this.connectTimeoutMs);
    this.listenerLost = false;
    // Attached for the lock attempt too: a checked-out client's error with no listener would throw.
    client.on('error', this.onListenerError);
    client.on('notification', this.onNotification);
    try {
      const r = await client.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [`wharf-outbox:${this.name}`]);
      if (r.rows[0].ok !== true) {
        this.releaseListener(client);
        return false;
      }
      await client.query(`LISTEN ${this.outbox.channel}`);
      this.listener = client;
      return true;
    } catch (err) {
      this.releaseListener(client, true);
      throw err;
    }
  }

  /**
   * Back to the pool without this relay's listeners: the pool hands the client out again, so a
   * listener left on it would pile up with every lock attempt of a standby, and its 'error' would
   * mark this relay's own lock connection lost.
   */
  private releaseListener(client: pg.PoolClient, destroy?: Error | boolean): void {
    client.off('error', this.onListenerError);
    client.off('notification', this.onNotification);
    client.release(destroy);
  }

  async markSent(ids: number[]): Promise<void> {
    await this.query(`UPDATE ${this.outbox.qualifiedTable} SET sent_at = now() WHERE id = ANY($1::bigint[])`, [ids]);
  }

  async markFailed(failures: OutboxFailure[]): Promise<void> {
    await this.query(
      `UPDATE ${this.outbox.qualifiedTable} AS t SET failed_at = now(), error = f.error
         FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE t.id = f.id`,
      [failures.map((f) => f.id), failures.map((f) => f.error)],
    );
  }

  /** pool.query, with the relay's wait for a connection bounded (connectTimeoutMs). */
  private query(text: string, values: unknown[]): Promise<pg.QueryResult> {
    return this.withConnection((client) => client.query(text, values));
  }

  /** Runs fn on a connection of its own; one on which fn failed is destroyed, as pool.query does (its state is unknown). */
  private async withConnection<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await connectWithin(this.pool, this.connectTimeoutMs);
    try {
      const result = await fn(client);
      client.release();
      return result;
    } catch (err) {
      client.release(err instanceof Error ? err : true);
      throw err;
    }
  }

  waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void> {
    return this.wakeup.wait(timeoutMs, signal);
  }

  async close(): Promise<void> {
    const client = this.listener;
    this.listener = null;
    if (client === null) return;
    if (this.listenerLost) return this.releaseListener(client, true);
    try {
      await client.query('SELECT pg_advisory_unlock_all()');
      await client.query(`UNLISTEN ${this.outbox.channel}`);
      this.releaseListener(client);
    } catch (err) {
      this.releaseListener(client, err instanceof Error ? err : true);
    }
  }
}
