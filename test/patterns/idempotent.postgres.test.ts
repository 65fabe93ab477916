// Idempotent consumer with the PostgreSQL store: exactly-once effects in the consumer's own database,
// including two consumers racing on the same message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresProcessedStore, idempotent } from '../../src/patterns/index.js';
import { openPgFixture, type PgFixture } from './pg-helper.js';

let fx: PgFixture;
beforeAll(async () => {
  fx = await openPgFixture();
  await fx.pool.query(`CREATE TABLE "${fx.schema}".ledger (message_id text, cents int)`);
});
afterAll(async () => {
  await fx?.drop();
});

const total = async (): Promise<number> =>
  Number((await fx.pool.query(`SELECT coalesce(sum(cents), 0) AS s FROM "${fx.schema}".ledger`)).rows[0].s);

type Msg = { id: string; payload: { cents: number } };

describe('idempotent consumer (PostgreSQL store)', () => {
  it('skips redeliveries, even concurrent ones, and rolls back a failed attempt', async () => {
    const store = await PostgresProcessedStore.open(fx.pool, { schema: fx.schema, consumer: 'ledger' });
    let failOnce = true;
    const handle = idempotent(store, async (m: Msg, tx) => {
      await tx.query(`INSERT INTO "${fx.schema}".ledger VALUES ($1, $2)`, [m.id, m.payload.cents]);
      if (m.id === 'flaky' && failOnce) {
        failOnce = false;
        throw new Error('flaky handler');
      }
    });
    await handle({ id: 'm1', payload: { cents: 100 } });
    await handle({ id: 'm1', payload: { cents: 100 } });
    await Promise.all(Array.from({ length: 5 }, () => handle({ id: 'm2', payload: { cents: 10 } })));
    await expect(handle({ id: 'flaky', payload: { cents: 1 } })).rejects.toThrow('flaky handler');
    expect(await store.has('flaky')).toBe(false);
    await handle({ id: 'flaky', payload: { cents: 1 } });
    expect(await total()).toBe(111);
    expect(await store.has('m2')).toBe(true);
    expect(await store.prune(60_000)).toBe(0);
  });
});
