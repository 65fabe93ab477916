// PostgreSQL for pattern tests: the real server on 127.0.0.1:5432; one uniquely named schema per test file, dropped after.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.WHARF_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface PgFixture {
  pool: pg.Pool;
  schema: string;
  drop(): Promise<void>;
}

export async function openPgFixture(): Promise<PgFixture> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 8 });
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(
      `PostgreSQL is not reachable at ${PG_URL} (${(err as Error).message}). ` +
        'Start PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres and database "test", or set WHARF_TEST_PG.',
    );
  }
  const schema = `wharf_test_${randomBytes(6).toString('hex')}`;
  await pool.query(`CREATE SCHEMA "${schema}"`);
  return {
    pool,
    schema,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}
