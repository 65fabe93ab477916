// Shared setup for the queue tests: a broker on a ManualClock, in memory or in a temp directory.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';
import type { BrokerOptions, QueueStats } from '../../src/broker/index.js';

export interface TestBroker {
  broker: Broker;
  clock: ManualClock;
  dir: string | null;
  /** Closes and opens the same data directory again (a clean restart). */
  restart(): Promise<Broker>;
  /**
   * A crash image: copies the data directory while the broker is open (what a kill -9 would leave,
   * since every resolved call's bytes are written), then opens the copy. Close-time snapshots do
   * not happen, so recovery replays the journal.
   */
  crashRestart(): Promise<Broker>;
  cleanup(): Promise<void>;
}

export async function openTestBroker(
  options: { disk?: boolean; fsync?: BrokerOptions['fsync'] } = {},
): Promise<TestBroker> {
  const clock = new ManualClock();
  let dir = options.disk ? mkdtempSync(join(tmpdir(), 'wharf-queue-')) : null;
  const dirs = dir === null ? [] : [dir];
  const open = (): Promise<Broker> =>
    dir === null
      ? Broker.open({ inMemory: true, clock })
      : Broker.open({ dataDir: dir, clock, fsync: options.fsync ?? 'never' });
  const t: TestBroker = {
    broker: await open(),
    clock,
    dir,
    async restart() {
      await t.broker.close();
      t.broker = await open();
      return t.broker;
    },
    async crashRestart() {
      if (dir === null) throw new Error('crashRestart needs a disk broker');
      const copy = mkdtempSync(join(tmpdir(), 'wharf-queue-crash-image-'));
      cpSync(dir, copy, { recursive: true });
      rmSync(join(copy, 'LOCK'), { force: true });
      dirs.push(copy);
      await t.broker.close();
      dir = copy;
      t.dir = copy;
      t.broker = await open();
      return t.broker;
    },
    async cleanup() {
      await t.broker.close().catch(() => undefined);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
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

/** Runs the broker's pending work (advancing the ManualClock by stepMs each turn) until cond holds. */
export async function until(cond: () => boolean, t: TestBroker, stepMs = 0): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) {
    if (stepMs > 0) t.clock.advance(stepMs);
    await settle(2);
  }
  if (!cond()) throw new Error('condition not reached');
}

/** Holds the next call of `method` until the returned function is called with how it ends: as usual, or with this error. */
export function holdNext<T extends object>(proto: T, method: keyof T & string): (failure?: Error) => void {
  let end!: (failure?: Error) => void;
  const ended = new Promise<Error | undefined>((resolve) => (end = resolve));
  const real = proto[method] as (...args: unknown[]) => Promise<unknown>;
  vi.spyOn(proto, method as never).mockImplementationOnce(async function (this: unknown, ...args: unknown[]) {
    const failure = await ended;
    if (failure !== undefined) throw failure;
    return real.apply(this, args);
  } as never);
  return end;
}
