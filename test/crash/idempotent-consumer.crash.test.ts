// Exactly-once effects with the idempotent consumer helper across SIGKILLs: a consumer process whose
// handler writes an effect in the same SQLite transaction that records the message as processed is
// killed at random moments (so messages processed but not yet acked come back); at the end every
// message has exactly one effect.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { SqliteProcessedStore, idempotent } from '../../src/patterns/index.js';
import { runKilledChild } from './killed-child.js';

const CHILD = fileURLToPath(new URL('./idempotent-consumer-child.ts', import.meta.url));
const MESSAGES = 3000;
const KILLS = 6;

describe('idempotent consumer across crashes', () => {
  it(
    `gives every message exactly one effect across ${KILLS} SIGKILLs of the consumer`,
    { timeout: 120_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wharf-idem-crash-'));
      const dataDir = join(dir, 'broker');
      const dbPath = join(dir, 'effects.db');
      try {
        const setup = await Broker.open({ dataDir });
        await setup.createQueue('work');
        for (let i = 0; i < MESSAGES; i += 500) {
          await setup.publish(
            'work',
            Array.from({ length: 500 }, (_, k) => ({ id: `m-${i + k}`, payload: i + k })),
          );
        }
        await setup.close();

        let effectsReported = 0;
        for (let run = 0; run < KILLS; run++) {
          await runKilledChild(CHILD, [dataDir, dbPath], 150 + Math.floor(Math.random() * 350), ([k]) => {
            if (k === 'E') effectsReported++;
          });
        }

        // Drain what is left here, with the same helper and store.
        const db = new Database(dbPath);
        const broker = await Broker.open({ dataDir });
        try {
          const store = new SqliteProcessedStore(db, { consumer: 'crash' });
          let duplicatesSkipped = 0;
          const handle = idempotent(
            store,
            (m: { id: string }, tx) => void tx.prepare('INSERT INTO effects VALUES (?)').run(m.id),
            {
              onDuplicate: () => duplicatesSkipped++,
            },
          );
          for (;;) {
            const batch = await broker.receive('work', { max: 100 });
            if (batch.length === 0) break;
            for (const m of batch) {
              await handle(m);
              await m.ack();
            }
          }
          const rows = db
            .prepare('SELECT message_id AS id, COUNT(*) AS n FROM effects GROUP BY message_id')
            .all() as Array<{ id: string; n: number }>;
          expect(rows.filter((r) => r.n !== 1)).toEqual([]);
          expect(rows.length).toBe(MESSAGES);
          // The kills really interrupted consumption (some processed-but-unacked messages came back).
          expect(effectsReported + duplicatesSkipped).toBeGreaterThan(0);
        } finally {
          await broker.close();
          db.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
