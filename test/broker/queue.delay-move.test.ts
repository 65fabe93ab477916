// A delayed message that falls due moves from the delay log to its priority level's log. It counts
// once against maxLength (and in stats) throughout: these tests hold one level's append while
// another level's has landed, the moment a message could be in both counts.
import { afterEach, describe, expect, it } from 'vitest';
import { ProducerDedupe } from '../../src/broker/idempotence.js';
import type { QueueOptions } from '../../src/broker/index.js';
import { resolveQueueOptions } from '../../src/broker/queues/queue-config.js';
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

/** A log whose appends wait for release() while held; everything else goes to the log itself. */
function holdable(log: PartitionLog): { log: PartitionLog; hold(): void; release(): void } {
  let held: Array<() => void> | null = null;
  const append = (records: RecordInput[]): Promise<AppendResult> => {
    const appended = log.append(records);
    if (held === null) return appended;
    const waiting = held;
    return new Promise((resolve, reject) => waiting.push(() => void appended.then(resolve, reject)));
  };
  const wrapped = new Proxy(log, {
    get(target, prop) {
      if (prop === 'append') return append;
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
  };
}

interface Rig {
  clock: ManualClock;
  engine: QueueEngine;
  publisher: QueuePublisher;
  /** Holds the appends of priority level 0. */
  level0: { hold(): void; release(): void };
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
  const level0 = holdable(logs[0]);
  const deadLetters: RecordInput[] = [];
  const engine = new QueueEngine(
    'q',
    resolved,
    {
      logs: [level0.log, ...logs.slice(1)],
      delayLog: await storage.openLog(['q', 'delay'], logOptions),
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
  return { clock, engine, publisher: new QueuePublisher(engine, new ProducerDedupe()), level0, deadLetters };
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
