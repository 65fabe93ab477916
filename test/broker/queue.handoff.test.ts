// Hand-off (src/broker/queues/queue-handoff.ts): a message published while a taker waits with room
// is leased to it as it is appended, with its delivery record journaled alongside the append. These
// tests drive a queue engine over memory storage whose appends and journal writes they hold, fail
// or let through, and a disk broker for the crash case.
import { afterEach, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/index.js';
import { ProducerDedupe } from '../../src/broker/idempotence.js';
import { resolveQueueOptions } from '../../src/broker/queues/queue-config.js';
import { QueueConsumer } from '../../src/broker/queues/consumer.js';
import type { Delivery } from '../../src/broker/queues/delivery.js';
import { OpsBuffer } from '../../src/broker/queues/queue-journal.js';
import { QueuePublisher } from '../../src/broker/queues/queue-publish.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { readyCount } from '../../src/broker/queues/queue-stats.js';
import type { QueueOptions } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';
import {
  openDiskStorage,
  openMemoryStorage,
  resolveJournalOptions,
  resolveLogOptions,
} from '../../src/storage/index.js';
import type {
  AppendResult,
  Journal,
  LogRecord,
  PartitionLog,
  ReadOptions,
  RecordInput,
} from '../../src/storage/index.js';
import { settle } from './queue-helpers.js';
import {
  ByteBudget,
  RECENT_APPENDS_BROKER_BYTES,
  RECENT_APPENDS_IDLE_MS,
} from '../../src/broker/queues/recent-appends.js';

/** A log whose appends can be held (resolved or failed later by the test); reads are counted. */
class HeldLog implements PartitionLog {
  hold = false;
  reads = 0;
  /** Records asked for by every read (ReadOptions.maxRecords). */
  recordsAsked = 0;
  /** Offsets reads leave out, as a log that lost them would. */
  readonly lost = new Set<number>();
  private failed: Error | null = null;
  private readonly held: Array<{ go: () => void; fail: (err: Error) => void }> = [];

  constructor(private readonly inner: PartitionLog) {}

  get startOffset(): number {
    return this.inner.startOffset;
  }
  get endOffset(): number {
    return this.inner.endOffset;
  }
  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }

  append(records: RecordInput[]): Promise<AppendResult> {
    if (this.failed !== null) return Promise.reject(this.failed);
    const p = this.inner.append(records);
    if (!this.hold) return p;
    return new Promise((resolve, reject) => {
      this.held.push({ go: () => void p.then(resolve, reject), fail: reject });
    });
  }

  read(from: number, o: ReadOptions): Promise<LogRecord[]> {
    this.reads++;
    this.recordsAsked += o.maxRecords ?? 0;
    if (this.lost.size === 0) return this.inner.read(from, o);
    return this.inner.read(from, o).then((recs) => recs.filter((rec) => !this.lost.has(rec.offset)));
  }
  readBatches(from: number, o: ReadOptions): Promise<Uint8Array[]> {
    return this.inner.readBatches(from, o);
  }
  offsetForTimestamp(ts: number): Promise<number> {
    return this.inner.offsetForTimestamp(ts);
  }
  applyRetention(nowMs: number): Promise<number> {
    return this.inner.applyRetention(nowMs);
  }
  truncateBefore(offset: number): Promise<number> {
    return this.inner.truncateBefore(offset);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  release(): void {
    for (const h of this.held.splice(0)) h.go();
  }

  /** Fails the held appends and every later one, as a DiskLog does after a write error. */
  fail(err: Error): void {
    this.failed = err;
    for (const h of this.held.splice(0)) h.fail(err);
  }
}

/** A journal whose next appends can be made to fail. */
class FlakyJournal implements Journal {
  failNext = 0;
  constructor(private readonly inner: Journal) {}
  append(entry: Uint8Array): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('journal write failed (test)'));
    }
    return this.inner.append(entry);
  }
  rewrite(entries: Uint8Array[]): Promise<void> {
    return this.inner.rewrite(entries);
  }
  entries(): Iterable<Uint8Array> {
    return this.inner.entries();
  }
  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Rig {
  clock: ManualClock;
  engine: QueueEngine;
  publisher: QueuePublisher;
  logs: HeldLog[];
  journal: FlakyJournal;
  /** What the queue's recent appends hold (recent-appends.ts). */
  recentBudget: ByteBudget;
}

/** A ManualClock whose now() can run ahead of its timers (an event loop too busy to fire them). */
class LaggingClock extends ManualClock {
  lagMs = 0;
  override now(): number {
    return super.now() + this.lagMs;
  }
}

async function openRig(
  options: QueueOptions = {},
  clock: ManualClock = new ManualClock(),
  /** Where dead letters go (no other queues by default). */
  appendTo: (queue: string, records: RecordInput[]) => Promise<void> = () =>
    Promise.reject(new Error('no other queues here')),
): Promise<Rig> {
  const storage = openMemoryStorage();
  const resolved = resolveQueueOptions(options, 1024 * 1024);
  const logOptions = resolveLogOptions({ fsync: 'always' });
  const logs = await Promise.all(
    Array.from({ length: resolved.priorities }, (_, i) => storage.openLog(['q', `p${i}`], logOptions)),
  );
  const held = logs.map((l) => new HeldLog(l));
  const delayLog = await storage.openLog(['q', 'delay'], logOptions);
  const journal = new FlakyJournal(
    await storage.openJournal(['q', 'state'], resolveJournalOptions({ fsync: 'always' })),
  );
  const recentBudget = new ByteBudget(RECENT_APPENDS_BROKER_BYTES);
  const engine = new QueueEngine(
    'q',
    resolved,
    { logs: held, delayLog, journal, shareReadBuffers: false },
    {
      clock,
      appendTo,
      depthOf: () => 0,
      recentAppendsBudget: recentBudget,
    },
  );
  await engine.recover();
  return {
    clock,
    engine,
    publisher: new QueuePublisher(engine, new ProducerDedupe()),
    logs: held,
    journal,
    recentBudget,
  };
}

const wish = (max = 10, leaseMs = 30_000): { max: number; leaseMs: number; decode: boolean } => ({
  max,
  leaseMs,
  decode: true,
});

/** A long poll as receive() makes it: take, then wait with a wish. */
async function longPoll(r: Rig, max = 10): Promise<{ result: Promise<Delivery[]> }> {
  expect(await r.engine.take(max, 30_000)).toEqual([]);
  return { result: r.engine.waitForWork(60_000, undefined, wish(max)) };
}

describe('queue hand-off', () => {
  const open: Rig[] = [];
  afterEach(async () => {
    for (const r of open.splice(0)) await r.engine.close().catch(() => undefined);
  });
  const rig = async (o: QueueOptions = {}, clock?: ManualClock): Promise<Rig> => {
    const r = await openRig(o, clock);
    open.push(r);
    return r;
  };

  it('hands a message published to a waiting taker over once durable, without reading it back', async () => {
    const r = await rig();
    const poll = await longPoll(r);
    const readsBefore = r.logs[0].reads;
    r.logs[0].hold = true;
    const published = r.publisher.publish([{ payload: { n: 1 } }]);
    await settle();
    expect(r.engine.state.inFlightCount).toBe(1); // leased as it was appended
    expect(readyCount(r.engine.state)).toBe(0);
    const during = await r.engine.stats();
    expect([during.depth, during.inFlight]).toEqual([0, 0]); // on its way to disk: no consumer has it yet
    let handed: Delivery[] | null = null;
    void poll.result.then((b) => (handed = b));
    await settle();
    expect(handed).toBeNull(); // not before the append is durable
    r.logs[0].release();
    await published;
    const batch = await poll.result;
    expect(batch.map((m) => m.payload)).toEqual([{ n: 1 }]);
    expect(batch[0].deliveryCount).toBe(1);
    expect(r.logs[0].reads).toBe(readsBefore);
    expect((await r.engine.stats()).inFlight).toBe(1);
    await batch[0].ack();
    const s = await r.engine.stats();
    expect([s.depth, s.inFlight]).toEqual([0, 0]);
  });

  it('hands over at most the wish, and the rest is taken in order', async () => {
    const r = await rig();
    const poll = await longPoll(r, 2);
    await r.publisher.publish([1, 2, 3, 4, 5].map((n) => ({ payload: n })));
    expect((await poll.result).map((m) => m.payload)).toEqual([1, 2]);
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual([3, 4, 5]);
  });

  it('splits one publish between waiting takers, in their order', async () => {
    const r = await rig();
    expect(await r.engine.take(10, 30_000)).toEqual([]);
    const a = r.engine.waitForWork(60_000, undefined, wish(1));
    const b = r.engine.waitForWork(60_000, undefined, wish(2));
    await r.publisher.publish([1, 2, 3, 4].map((n) => ({ payload: n })));
    expect((await a).map((m) => m.payload)).toEqual([1]);
    expect((await b).map((m) => m.payload)).toEqual([2, 3]);
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual([4]);
  });

  it('does not hand over past an append still on its way (order within a level holds)', async () => {
    const r = await rig();
    r.logs[0].hold = true;
    const first = r.publisher.publish([{ payload: 'first' }]); // no taker waits: the usual way
    await settle();
    const poll = await longPoll(r);
    const second = r.publisher.publish([{ payload: 'second' }]);
    await settle();
    expect(r.engine.state.inFlightCount).toBe(0); // not handed: 'first' is ahead of it
    r.logs[0].release();
    await Promise.all([first, second]);
    expect((await poll.result).map((m) => m.payload)).toEqual([]); // woken by the publish, empty-handed
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual(['first', 'second']);
  });

  it('does not hand a lower priority over while a higher one is on its way', async () => {
    const r = await rig({ priorities: 2 });
    r.logs[1].hold = true;
    const high = r.publisher.publish([{ payload: 'high', priority: 1 }]); // no taker waits: the usual way
    await settle();
    const poll = await longPoll(r);
    const low = r.publisher.publish([{ payload: 'low', priority: 0 }]);
    await low;
    expect(r.engine.state.inFlightCount).toBe(0);
    r.logs[1].release();
    await high;
    await poll.result;
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual(['high', 'low']);
  });

  it('does not hand over while a redelivery is waiting', async () => {
    const r = await rig();
    await r.publisher.publish([{ payload: 'old' }]);
    const [m] = await r.engine.take(1, 30_000);
    const poll = r.engine.waitForWork(60_000, undefined, wish());
    await m.nack({ delayMs: 0 }); // visible again, wakes the waiter
    expect(await poll).toEqual([]);
    const poll2 = r.engine.waitForWork(60_000, undefined, wish());
    await r.publisher.publish([{ payload: 'new' }]);
    expect(await poll2).toEqual([]);
    expect((await r.engine.take(10, 30_000)).map((x) => x.payload)).toEqual(['old', 'new']);
  });

  it('takes the leases back when the append fails: nothing is tracked and the taker is freed', async () => {
    const r = await rig();
    const poll = await longPoll(r);
    r.logs[0].hold = true;
    const published = r.publisher.publish([{ payload: 'lost' }]);
    await settle();
    expect(r.engine.state.inFlightCount).toBe(1);
    r.logs[0].fail(new Error('disk gone (test)'));
    await expect(published).rejects.toThrow('disk gone');
    expect(await poll.result).toEqual([]);
    expect(r.engine.state.tracked.size).toBe(0);
    expect(r.engine.state.aheadCount).toBe(0);
    const s = await r.engine.stats();
    expect([s.depth, s.inFlight]).toEqual([0, 0]);
    expect(r.engine.state.levels[0].cursor).toBe(0);
  });

  it('when the delivery record fails, the taker gets nothing and the message is back at once, uncounted', async () => {
    const r = await rig();
    const poll = await longPoll(r);
    r.journal.failNext = 1;
    await r.publisher.publish([{ payload: 'x' }]);
    expect(await poll.result).toEqual([]);
    const again = await r.engine.take(10, 1000);
    expect(again.map((m) => [m.payload, m.deliveryCount])).toEqual([['x', 1]]);
  });

  it('hands over the highest level of a publish that spans levels', async () => {
    const r = await rig({ priorities: 2 });
    const poll = await longPoll(r, 1);
    await r.publisher.publish([
      { payload: 'low', priority: 0 },
      { payload: 'high', priority: 1 },
    ]);
    expect((await poll.result).map((m) => m.payload)).toEqual(['high']);
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual(['low']);
  });

  it('does not hand over while a retry is due but its timer has not fired yet', async () => {
    const clock = new LaggingClock();
    const r = await rig({}, clock);
    await r.publisher.publish([{ payload: 'old' }]);
    const [m] = await r.engine.take(1, 30_000);
    await m.nack({ delayMs: 500 });
    const poll = await longPoll(r);
    clock.lagMs = 600; // due, and no timer has run
    await r.publisher.publish([{ payload: 'new' }]);
    expect(await poll.result).toEqual([]);
    expect((await r.engine.take(10, 30_000)).map((x) => [x.payload, x.deliveryCount])).toEqual([
      ['old', 2],
      ['new', 1],
    ]);
  });

  it('a queue closed while a hand-off is on its way gives the message back uncounted', async () => {
    const r = await rig();
    const poll = await longPoll(r);
    r.logs[0].hold = true;
    const published = r.publisher.publish([{ payload: 'p' }]);
    await settle();
    const closing = r.engine.close();
    await settle();
    r.logs[0].release();
    await published;
    await closing;
    expect(await poll.result).toEqual([]);
    const t = r.engine.state.tracked.get(0);
    expect([t?.state, t?.deliveryCount]).toEqual(['visible', 0]);
  });

  it('a consumer closed while a hand-off is on its way gives the message back uncounted', async () => {
    const r = await rig();
    const seen: unknown[] = [];
    const c = new QueueConsumer(r.engine, {}, (m) => void seen.push(m.payload)).start();
    await settle();
    r.logs[0].hold = true;
    const published = r.publisher.publish([{ payload: 'p' }]);
    await settle();
    expect(r.engine.state.inFlightCount).toBe(1);
    const closing = c.close();
    await settle();
    r.logs[0].release();
    await published;
    await closing;
    expect(seen).toEqual([]);
    const [m] = await r.engine.take(1, 30_000);
    expect([m.payload, m.deliveryCount]).toEqual(['p', 1]);
  });

  it('a consumer waiting idle gets each new message by hand-off, and acks it', async () => {
    const r = await rig();
    const seen: unknown[] = [];
    const c = new QueueConsumer(r.engine, { concurrency: 2 }, (m) => void seen.push(m.payload)).start();
    await settle();
    const readsBefore = r.logs[0].reads;
    for (let i = 0; i < 5; i++) {
      await r.publisher.publish([{ payload: i }]);
      await settle();
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(r.logs[0].reads).toBe(readsBefore);
    await settle();
    const s = await r.engine.stats();
    expect([s.depth, s.inFlight]).toEqual([0, 0]);
    await c.close();
  });
});

describe('queue hand-off after a crash', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A data directory holding queue q with one message (offset 0), closed, and `op` journaled after. */
  async function imageWith(clock: ManualClock, op: Parameters<OpsBuffer['push']>): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-handoff-'));
    dirs.push(dir);
    const broker = await Broker.open({ dataDir: dir, clock, fsync: 'always' });
    await broker.createQueue('q');
    await broker.publish('q', { payload: 'a' });
    await broker.close();
    const storage = await openDiskStorage(dir);
    const journal = await storage.openJournal(['queues', 'q', 'state'], resolveJournalOptions({ fsync: 'always' }));
    const ops = new OpsBuffer();
    ops.push(...op);
    await journal.append(ops.take()!);
    await journal.close();
    await storage.close();
    return dir;
  }

  it('forgets a settle journaled for an offset the log lost (fsync interval or never): the next message there is delivered', async () => {
    const clock = new ManualClock();
    const dir = await imageWith(clock, ['settle', 0, 1, 0, 0, 0]);
    const broker = await Broker.open({ dataDir: dir, clock, fsync: 'always' });
    await broker.publish('q', { payload: 'b' }); // offset 1 again
    const got = await broker.receive('q', { max: 10 });
    expect(got.map((m) => m.payload)).toEqual(['a', 'b']);
    await broker.close();
  });

  it('drops a delivery record for an offset the log never got, before that offset is used again', async () => {
    const clock = new ManualClock();
    const open = (d: string): Promise<Broker> => Broker.open({ dataDir: d, clock, fsync: 'always' });
    // The crash image of a hand-off whose delivery record reached the journal and whose append
    // (offset 1) did not reach the log.
    const dir = await imageWith(clock, ['deliver', 0, 1, 1, clock.now(), clock.now()]);
    let broker = await open(dir);
    await broker.publish('q', { payload: 'b' }); // offset 1 again
    // A crash now (a copy of the open data directory): recovery replays the journal without the
    // close-time snapshot.
    const image = mkdtempSync(join(tmpdir(), 'wharf-handoff-image-'));
    dirs.push(image);
    cpSync(dir, image, { recursive: true });
    rmSync(join(image, 'LOCK'), { force: true });
    await broker.close();
    broker = await open(image);
    const got = await broker.receive('q', { max: 10 });
    expect(got.map((m) => [m.payload, m.deliveryCount])).toEqual([
      ['a', 1],
      ['b', 1],
    ]);
    await broker.close();
  });
});

describe('queue recent appends', () => {
  const open: Rig[] = [];
  afterEach(async () => {
    for (const r of open.splice(0)) await r.engine.close().catch(() => undefined);
  });
  const rig = async (o: QueueOptions = {}): Promise<Rig> => {
    const r = await openRig(o);
    open.push(r);
    return r;
  };

  it('a take at the tail gets what was appended since without reading the log back', async () => {
    const r = await rig();
    expect(await r.engine.take(10, 30_000)).toEqual([]); // the queue is being read
    await r.publisher.publish([1, 2, 3].map((n) => ({ payload: n }))); // no taker waits: no hand-off
    expect(r.recentBudget.usedBytes).toBeGreaterThan(0);
    const readsBefore = r.logs[0].reads;
    expect((await r.engine.take(2, 30_000)).map((m) => m.payload)).toEqual([1, 2]);
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual([3]);
    expect(r.logs[0].reads).toBe(readsBefore);
    // Passed by the cursor: let go.
    await r.publisher.publish([{ payload: 4 }]);
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual([4]);
    expect(r.logs[0].reads).toBe(readsBefore);
  });

  it("keeps a copy: the publisher's bytes may change once publish has returned", async () => {
    const r = await rig();
    await r.engine.take(1, 30_000);
    const bytes = new Uint8Array([1, 2, 3]);
    await r.publisher.publish([{ payload: bytes }]);
    bytes.fill(9);
    const [m] = await r.engine.take(1, 30_000);
    expect([...(m.payload as Uint8Array)]).toEqual([1, 2, 3]);
  });

  it('a queue nobody takes from keeps nothing, and lets go of what it kept once nobody takes', async () => {
    const r = await rig();
    await r.publisher.publish([{ payload: 1 }]);
    expect(r.recentBudget.usedBytes).toBe(0);
    const readsBefore = r.logs[0].reads;
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual([1]);
    expect(r.logs[0].reads).toBeGreaterThan(readsBefore); // read back, as before
    await r.publisher.publish([{ payload: 2 }]);
    expect(r.recentBudget.usedBytes).toBeGreaterThan(0);
    r.clock.advance(RECENT_APPENDS_IDLE_MS * 2);
    expect(r.recentBudget.usedBytes).toBe(0);
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual([2]);
  });

  it("a handed-off payload has a buffer of its own: no other message's bytes, however many copies are kept", async () => {
    const r = await rig();
    await r.engine.take(1, 30_000);
    await r.publisher.publish([{ payload: Buffer.from('kept-for-the-next-take') }]); // copied for a take
    await r.engine.take(1, 30_000);
    const poll = r.engine.waitForWork(60_000, undefined, wish(1));
    await r.publisher.publish([{ payload: new Uint8Array([1, 2, 3]) }]);
    const [m] = await poll;
    const p = m.payload as Uint8Array;
    expect([...p]).toEqual([1, 2, 3]);
    expect(p.buffer.byteLength).toBe(3);
  });

  it('takes what a hand-off left from the copies, in order', async () => {
    const r = await rig();
    const poll = await longPoll(r, 2);
    await r.publisher.publish([1, 2, 3, 4, 5].map((n) => ({ payload: n })));
    expect((await poll.result).map((m) => m.payload)).toEqual([1, 2]);
    const copied = r.recentBudget.usedBytes; // the three not handed off, and only they
    await r.publisher.publish([3].map((n) => ({ payload: n })));
    expect(r.recentBudget.usedBytes - copied).toBe(copied / 3);
    const readsBefore = r.logs[0].reads;
    expect((await r.engine.take(10, 30_000)).map((m) => m.payload)).toEqual([3, 4, 5, 3]);
    expect(r.logs[0].reads).toBe(readsBefore);
  });

  it('a message given back while copies are kept is redelivered first, then the copies in order', async () => {
    const r = await rig();
    await r.engine.take(1, 30_000);
    await r.publisher.publish([1, 2, 3].map((n) => ({ payload: n })));
    const [first] = await r.engine.take(1, 30_000);
    await first.nack({ delayMs: 0 });
    const second = await r.engine.take(10, 30_000);
    expect(second.map((m) => [m.payload, m.deliveryCount])).toEqual([
      [1, 2],
      [2, 1],
      [3, 1],
    ]);
  });

  it('purge and close let go of the copies', async () => {
    const r = await rig();
    await r.engine.take(1, 30_000);
    await r.publisher.publish([1, 2].map((n) => ({ payload: n })));
    expect(r.recentBudget.usedBytes).toBeGreaterThan(0);
    expect(await r.engine.purge()).toBe(2);
    expect(r.recentBudget.usedBytes).toBe(0);
    expect(await r.engine.take(10, 30_000)).toEqual([]);
    await r.publisher.publish([{ payload: 3 }]);
    expect(r.recentBudget.usedBytes).toBeGreaterThan(0);
    await r.engine.close();
    expect(r.recentBudget.usedBytes).toBe(0);
  });

  it('a failed append gives its reservation back', async () => {
    const r = await rig();
    await r.engine.take(1, 30_000);
    r.logs[0].hold = true;
    const published = r.publisher.publish([{ payload: 1 }]);
    await settle();
    expect(r.recentBudget.usedBytes).toBeGreaterThan(0); // copied as it was appended
    r.logs[0].fail(new Error('disk gone (test)'));
    await expect(published).rejects.toThrow();
    expect(r.recentBudget.usedBytes).toBe(0);
  });
});

describe('queue redeliveries', () => {
  const open: Rig[] = [];
  afterEach(async () => {
    for (const r of open.splice(0)) await r.engine.close().catch(() => undefined);
  });

  it('messages visible again are read back in runs, not one read each', async () => {
    const r = await openRig();
    open.push(r);
    await r.publisher.publish(Array.from({ length: 200 }, (_, n) => ({ payload: n })));
    const first = await r.engine.take(200, 1_000);
    expect(first).toHaveLength(200);
    for (const m of first) if ((m.payload as number) % 3 === 0) await m.ack(); // gaps among the leases
    r.clock.advance(1_001); // the rest: leases ended, visible again
    const readsBefore = r.logs[0].reads;
    const again = await r.engine.take(1000, 30_000);
    expect(again.map((m) => m.payload)).toEqual(Array.from({ length: 200 }, (_, n) => n).filter((n) => n % 3 !== 0));
    expect(again.every((m) => m.deliveryCount === 2)).toBe(true);
    expect(r.logs[0].reads - readsBefore).toBe(1);
    // A take wanting fewer reads no further than it needs.
    r.clock.advance(30_001);
    const two = await r.engine.take(2, 30_000);
    expect(two.map((m) => m.payload)).toEqual([1, 2]);
  });
  it('a few visible messages far apart are read one each, not with everything between them', async () => {
    const r = await openRig();
    open.push(r);
    await r.publisher.publish(Array.from({ length: 2000 }, (_, n) => ({ payload: n })));
    const first = await r.engine.take(2000, 1_000);
    for (const m of first) if ((m.payload as number) % 100 !== 0) await m.ack(); // every 100th left leased
    r.clock.advance(1_001);
    const asked = r.logs[0].recordsAsked;
    const again = await r.engine.take(1000, 30_000);
    expect(again.map((m) => m.payload)).toEqual(Array.from({ length: 20 }, (_, i) => i * 100));
    expect(r.logs[0].recordsAsked - asked).toBe(20);
  });
  it('a message acked by position while its expiry writes its dead letter is settled once', async () => {
    let release!: () => void;
    const deadLetters: RecordInput[][] = [];
    const r = await openRig(
      { ttlMs: 1_000, onExpire: 'dead-letter', deadLetterQueue: 'dlq' },
      undefined,
      (_q, recs) => {
        deadLetters.push(recs);
        return new Promise<void>((resolve) => (release = resolve));
      },
    );
    open.push(r);
    await r.publisher.publish([{ payload: 'a' }]);
    const [m] = await r.engine.take(1, 100);
    expect(r.engine.bytes).toBeGreaterThan(0);
    r.clock.advance(1_001); // its lease ended and its time to live passed: the next take expires it
    const taking = r.engine.take(1, 30_000);
    await settle();
    expect(deadLetters).toHaveLength(1); // the dead letter is on its way
    await r.engine.ackByReceiptPosition(m.receipt); // a transaction rolling forward acks it meanwhile
    release();
    expect(await taking).toEqual([]);
    expect(r.engine.bytes).toBe(0);
    const s = await r.engine.stats();
    expect([s.depth, s.inFlight, s.bytes]).toEqual([0, 0, 0]);
  });
  it('a message visible again that the log lost is settled, its bytes counted off', async () => {
    const r = await openRig();
    open.push(r);
    await r.publisher.publish([0, 1, 2].map((n) => ({ payload: n })));
    await r.engine.take(3, 100);
    r.clock.advance(101);
    r.logs[0].lost.add(1);
    const again = await r.engine.take(10, 30_000);
    expect(again.map((m) => m.payload)).toEqual([0, 2]);
    for (const m of again) await m.ack();
    const s = await r.engine.stats();
    expect([s.depth, s.inFlight, s.bytes, r.engine.bytes]).toEqual([0, 0, 0, 0]);
  });
});
