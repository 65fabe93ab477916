// A delayed message that falls due moves from the delay log to its priority level's log. It counts
// once against maxLength (and in stats) throughout: these tests hold one level's append while
// another level's has landed, the moment a message could be in both counts.
import { afterEach, describe, expect, it } from 'vitest';
import { ProducerDedupe } from '../../src/broker/idempotence.js';
import type { QueueOptions } from '../../src/broker/index.js';
import { QUEUE_DEFAULTS, resolveQueueOptions } from '../../src/broker/queues/queue-config.js';
import { QueuePublisher } from '../../src/broker/queues/queue-publish.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { ByteBudget, RECENT_APPENDS_BROKER_BYTES } from '../../src/broker/queues/recent-appends.js';
import { ManualClock } from '../../src/common/index.js';
import {
  openMemoryStorage,
  resolveJournalOptions,
  resolveLogOptions,
  type AppendResult,
  type PartitionLog,
  type RecordInput,
} from '../../src/storage/index.js';
import { settle } from './queue-helpers.js';

/** A log whose appends can be held or failed, and its reads failed; everything else goes to the log itself. */
function controllable(log: PartitionLog): {
  log: PartitionLog;
  hold(): void;
  release(): void;
  /** The next n appends fail with err, storing nothing. */
  failAppends(n: number, err: Error): void;
  /** The next n reads of more than one record (delay-log scans, not a move's reads of one) fail with err. */
  failScans(n: number, err: Error): void;
} {
  let held: Array<() => void> | null = null;
  let appendFailures: { n: number; err: Error } = { n: 0, err: new Error() };
  let scanFailures: { n: number; err: Error } = { n: 0, err: new Error() };
  const append = (records: RecordInput[]): Promise<AppendResult> => {
    if (appendFailures.n > 0) {
      appendFailures.n--;
      return Promise.reject(appendFailures.err);
    }
    const appended = log.append(records);
    if (held === null) return appended;
    const waiting = held;
    return new Promise((resolve, reject) => waiting.push(() => void appended.then(resolve, reject)));
  };
  const read: PartitionLog['read'] = (offset, options) => {
    if ((options?.maxRecords ?? Infinity) > 1 && scanFailures.n > 0) {
      scanFailures.n--;
      return Promise.reject(scanFailures.err);
    }
    return log.read(offset, options);
  };
  const wrapped = new Proxy(log, {
    get(target, prop) {
      if (prop === 'append') return append;
      if (prop === 'read') return read;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    log: wrapped,
    hold: () => void (held ??= []),
    release() {
      const waiting = held ?? [];
      held = null;
      for (const go of waiting) go();
    },
    failAppends: (n, err) => void (appendFailures = { n, err }),
    failScans: (n, err) => void (scanFailures = { n, err }),
  };
}

interface Rig {
  clock: ManualClock;
  engine: QueueEngine;
  publisher: QueuePublisher;
  /** Holds or fails the appends of priority level 0. */
  level0: ReturnType<typeof controllable>;
  /** Fails the delay log's scans. */
  delayLog: ReturnType<typeof controllable>;
  /** Records appended to other queues (dead letters). */
  deadLetters: RecordInput[];
}

async function openRig(options: QueueOptions): Promise<Rig> {
  const clock = new ManualClock();
  const storage = openMemoryStorage();
  const resolved = resolveQueueOptions(options, 1024 * 1024);
  const logOptions = resolveLogOptions({ fsync: 'always' });
  const logs = await Promise.all(
    Array.from({ length: resolved.priorities }, (_, i) => storage.openLog(['q', `p${i}`], logOptions)),
  );
  const level0 = controllable(logs[0]);
  const delayLog = controllable(await storage.openLog(['q', 'delay'], logOptions));
  const deadLetters: RecordInput[] = [];
  const engine = new QueueEngine(
    'q',
    resolved,
    {
      logs: [level0.log, ...logs.slice(1)],
      delayLog: delayLog.log,
      journal: await storage.openJournal(['q', 'state'], resolveJournalOptions({ fsync: 'always' })),
      shareReadBuffers: false,
    },
    {
      clock,
      appendTo: async (_queue, records) => void deadLetters.push(...records),
      depthOf: () => 0,
      recentAppendsBudget: new ByteBudget(RECENT_APPENDS_BROKER_BYTES),
    },
  );
  await engine.recover();
  return { clock, engine, publisher: new QueuePublisher(engine, new ProducerDedupe()), level0, delayLog, deadLetters };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await settle(1);
  expect(cond()).toBe(true);
}

describe('a delayed message moving to its level', () => {
  const open: Rig[] = [];
  afterEach(async () => {
    for (const r of open.splice(0)) {
      r.level0.release();
      await r.engine.close().catch(() => undefined);
    }
  });

  /**
   * Two delayed messages of a queue with room for three, due together, at levels 1 and 0; the
   * level-0 append is held, so 'hi' has reached level 1 while 'lo' is still on its way.
   */
  async function halfMoved(options: QueueOptions): Promise<Rig> {
    const r = await openRig({ priorities: 2, maxLength: 3, ...options });
    open.push(r);
    await r.publisher.publish([
      { payload: 'hi', priority: 1, delayMs: 1000 },
      { payload: 'lo', priority: 0, delayMs: 1000 },
    ]);
    r.level0.hold();
    r.clock.advance(1000); // the delay timer starts the move
    await until(() => r.engine.state.levels[1].endOffset === 1);
    return r;
  }

  it("counts once against maxLength and in stats: a publish that fits is stored, not refused with QUEUE_FULL (overflow 'reject')", async () => {
    const r = await halfMoved({ overflow: 'reject' });
    expect((await r.publisher.publish([{ payload: 'new', priority: 1 }]))[0].overflow).toBeUndefined();
    const during = await r.engine.stats();
    expect(during.depth + during.inFlight + during.delayed).toBe(3);
    await expect(r.publisher.publish([{ payload: 'over', priority: 1 }])).rejects.toMatchObject({
      code: 'QUEUE_FULL',
    });
    r.level0.release();
    await until(() => r.engine.state.levels[0].endOffset === 1);
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual(['hi', 'new', 'lo']);
  });

  it("counts once against maxLength: overflow 'dead-letter' stores a publish that fits instead of dead-lettering it", async () => {
    const r = await halfMoved({ overflow: 'dead-letter', deadLetterQueue: 'q.dlq' });
    expect((await r.publisher.publish([{ payload: 'new', priority: 1 }]))[0].overflow).toBeUndefined();
    expect(r.deadLetters).toEqual([]);
    r.level0.release();
    await until(() => r.engine.state.levels[0].endOffset === 1);
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual(['hi', 'new', 'lo']);
  });
});

describe('a delayed message whose move to its level fails', () => {
  const open: Rig[] = [];
  afterEach(async () => {
    for (const r of open.splice(0)) await r.engine.close().catch(() => undefined);
  });

  const rig = async (options: QueueOptions): Promise<Rig> => {
    const r = await openRig(options);
    open.push(r);
    return r;
  };
  const payloads = async (r: Rig): Promise<unknown[]> => (await r.engine.take(100, 30_000)).map((m) => m.payload);
  const retryMs = QUEUE_DEFAULTS.delayMoveRetryMs;

  it('stays indexed and moves at the next due check, delayMoveRetryMs later, instead of waiting for a restart', async () => {
    const r = await rig({});
    await r.publisher.publish([{ payload: 'a', delayMs: 1000 }]);
    r.level0.failAppends(1, new Error('disk full'));
    r.clock.advance(1000); // the delay timer's move fails
    await settle(5);
    expect(r.engine.state.levels[0].endOffset).toBe(0);
    expect((await r.engine.stats()).delayed).toBe(1);
    // Not tried again at once, by a receive or the timer: a failing log is not hammered.
    expect(await payloads(r)).toEqual([]);
    r.clock.advance(retryMs - 1);
    await settle(5);
    expect(r.engine.state.levels[0].endOffset).toBe(0);
    r.clock.advance(1); // the timer tries again
    await until(() => r.engine.state.levels[0].endOffset === 1);
    expect(await payloads(r)).toEqual(['a']);
    expect((await r.engine.stats()).delayed).toBe(0);
  });

  it('of two levels moved together, the one that was stored is delivered at once; only the failed one waits for the retry', async () => {
    const r = await rig({ priorities: 2 });
    await r.publisher.publish([
      { payload: 'hi', priority: 1, delayMs: 1000 },
      { payload: 'lo', priority: 0, delayMs: 1000 },
    ]);
    r.level0.failAppends(1, new Error('disk full'));
    r.clock.advance(1000);
    await until(() => r.engine.state.levels[1].endOffset === 1);
    await settle(5);
    expect(await payloads(r)).toEqual(['hi']);
    expect((await r.engine.stats()).delayed).toBe(1);
    r.clock.advance(retryMs);
    await until(() => r.engine.state.levels[0].endOffset === 1);
    expect(await payloads(r)).toEqual(['lo']);
    expect((await r.engine.stats()).delayed).toBe(0);
  });

  it('a rescan of the delay log that fails is done again, whole, after the retry delay: messages it did not reach are not forgotten', async () => {
    const r = await rig({});
    const capacity = QUEUE_DEFAULTS.delayIndexCapacity;
    // One more than the index holds: the last is found by the rescan once the index runs empty.
    for (let at = 0; at <= capacity; at += 5000) {
      const n = Math.min(5000, capacity + 1 - at);
      await r.publisher.publish(Array.from({ length: n }, (_, i) => ({ payload: at + i, delayMs: 1000 })));
    }
    r.delayLog.failScans(1, new Error('read failed'));
    r.clock.advance(1000);
    await until(() => r.engine.state.levels[0].endOffset === capacity);
    await settle(5);
    expect((await r.engine.stats()).delayed).toBe(1);
    r.clock.advance(retryMs);
    await until(() => r.engine.state.levels[0].endOffset === capacity + 1);
    expect((await r.engine.stats()).delayed).toBe(0);
  });
});
