// Child of idempotent-consumer.crash.test.ts: consumes the queue with the idempotent consumer helper
// (SQLite store), each handler writing its effect row in the transaction that records the message
// as processed, until SIGKILLed. Reports "E id" after an effect committed (for the parent's count).
import Database from 'better-sqlite3';
import { Broker } from '../../src/broker/index.js';
import { SqliteProcessedStore, idempotent } from '../../src/patterns/index.js';
import { report, reportReady } from './child-report.js';

const [dataDir, dbPath] = process.argv.slice(2);
const db = new Database(dbPath);
db.pragma('journal_mode = WAL'); // commits reach the OS at once: they survive SIGKILL
db.exec('CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL)');
const store = new SqliteProcessedStore(db, { consumer: 'crash' });
const broker = await Broker.open({ dataDir, fsync: 'always' });
const handle = idempotent(store, (m: { id: string }, tx) => {
  tx.prepare('INSERT INTO effects VALUES (?)').run(m.id);
});
await broker.consume('work', { concurrency: 4, visibilityTimeoutMs: 60_000 }, async (m) => {
  await handle(m);
  report(`E ${m.id}`); // its effect (or an earlier one) is committed; the ack comes after this
});
reportReady();
