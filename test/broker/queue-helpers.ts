// Shared setup for the queue tests: a broker on a ManualClock, in memory or in a temp directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';
import type { BrokerOptions, QueueStats } from '../../src/broker/index.js';

export interface TestBroker {
  broker: Broker;
  clock: ManualClock;
  dir: string | null;
  /** Closes and opens the same data directory again (a clean restart). */
  restart(): Promise<Broker>;
  cleanup(): Promise<void>;
}

export async function openTestBroker(options: { disk?: boolean; fsync?: BrokerOptions['fsync'] } = {}): Promise<TestBroker> {
  const clock = new ManualClock();
  const dir = options.disk ? mkdtempSync(join(tmpdir(), 'wharf-queue-')) : null;
  const open = (): Promise<Broker> =>
    dir === null ? Broker.open({ inMemory: true, clock }) : Broker.open({ dataDir: dir, clock, fsync: options.fsync ?? 'never' });
  const t: TestBroker = {
    broker: await open(),
    clock,
    dir,
    async restart() {
      await t.broker.close();
      t.broker = await open();
      return t.broker;
    },
    async cleanup() {
      await t.broker.close().catch(() => undefined);
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** Lets pending promise chains and setImmediate-batched journal commits run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

export function payloads(msgs: Array<{ payload: unknown }>): unknown[] {
  return msgs.map((m) => m.payload);
}

/** Queue stats (broker.stats returns the union of topic and queue stats). */
export async function qstats(t: TestBroker, name: string): Promise<QueueStats> {
  return (await t.broker.stats(name)) as QueueStats;
}
