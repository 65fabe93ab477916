// Takes a connection from a pg pool within a time limit. pg waits for ever by default (its
// connectionTimeoutMillis is 0): for a free connection of an exhausted pool, or for a server that
// accepts and never answers. A relay waiting so would say nothing, and its stop() would never return.
import type pg from 'pg';
import { WharfError } from '../../common/index.js';

/**
 * A connection from pool, or TIMEOUT once timeoutMs have passed. pg cannot cancel the attempt: a
 * connection that arrives after the timeout goes back to the pool unused.
 */
export function connectWithin(pool: pg.Pool, timeoutMs: number): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(
        new WharfError(
          'TIMEOUT',
          `no connection from the PostgreSQL pool within ${timeoutMs} ms (connectTimeoutMs): the pool's connections ` +
            "are all in use or the database does not answer; check the database, raise the pool's max, or raise connectTimeoutMs",
        ),
      );
    }, timeoutMs);
    pool.connect().then(
      (client) => {
        if (timedOut) return client.release();
        clearTimeout(timer);
        resolve(client);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err); // ignored once timed out: the TIMEOUT was the answer
      },
    );
  });
}
