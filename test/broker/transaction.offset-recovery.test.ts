// A transaction's offset commit that recovery rolls forward (its intent begun, its `done` not yet
// written, or a part of it failed) never overwrites a commit of the same group partition written
// after it: the group's offset does not move back at a restart, so the messages after it are not
// delivered again (their transactions' effects twice).
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Broker, Subscription, TopicMessage, TopicStats } from '../../src/broker/index.js';
import { decodeIntentEntry } from '../../src/broker/exchanges/intent-entry.js';
import { TopicManager } from '../../src/broker/topics/topic-manager.js';
import { DiskJournal } from '../../src/storage/journal.js';
import { openTestBroker, type TestBroker } from './queue-helpers.js';
import { waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A disk broker with input topic `in` holding `inputs` messages (payloads 0..) and output topic `out`. */
async function setup(inputs: number): Promise<TestBroker> {
  const t = await openTestBroker({ disk: true });
  cleanups.push(() => t.cleanup());
  await t.broker.createTopic('in', { partitions: 1 });
  await t.broker.createTopic('out', { partitions: 1 });
  await t.broker.publish(
    'in',
    Array.from({ length: inputs }, (_, i) => ({ payload: i })),
  );
  return t;
}

async function committed(b: Broker): Promise<number | undefined> {
  return ((await b.stats('in')) as TopicStats).groups.g?.partitions[0].committed;
}

async function outputs(b: Broker): Promise<number> {
  return ((await b.stats('out')) as TopicStats).partitions[0].endOffset;
}

/** One output for the input and its offset committed under its grant. */
function processOnce(b: Broker, m: TopicMessage): Promise<void> {
  return b.transaction(async (tx) => {
    await tx.publish('out', { payload: `out-${String(m.payload)}` });
    await tx.commitOffset(m);
  });
}

async function subscribe(b: Broker, handler: (m: TopicMessage) => Promise<void> | void): Promise<Subscription> {
  const sub = await b.subscribe('in', { group: 'g', from: 'earliest' }, handler);
  cleanups.push(() => sub.close());
  return sub;
}

/**
 * The intent journal's entries that only mark intents done never reach the disk, as when the
 * process is killed right after an intent was applied (they are written then, and not waited for).
 */
function loseDoneEntries(): void {
  const append = DiskJournal.prototype.append;
  const spy = vi.spyOn(DiskJournal.prototype, 'append').mockImplementation(function (this: DiskJournal, entry) {
    if (this.path.includes('intents') && decodeIntentEntry(entry).begun.length === 0)
      return Promise.reject(new Error('the process was killed'));
    return append.call(this, entry);
  });
  cleanups.push(() => spy.mockRestore());
}

describe('recovery of a transaction’s offset commit', () => {
  it('a crash before its intent is marked done does not move the offset back below the member’s later commit', async () => {
    const t = await setup(4);
    loseDoneEntries();
    // Message 0 is processed in a transaction; messages 1-3 need nothing (at-least-once) and are
    // committed by the member.
    await subscribe(t.broker, (m) => (m.payload === 0 ? processOnce(t.broker, m) : undefined));
    await waitFor(async () => (await committed(t.broker)) === 4, 'the member committed past message 3');
    const broker = await t.crashRestart();
    expect(broker.recoveredIntents).toBe(1);
    expect(await committed(broker)).toBe(4);
    expect(await outputs(broker)).toBe(1);
  });

  it('a transaction that failed part-way and is finished at the next open does not undo the transactions after it', async () => {
    const t = await setup(4);
    // Message 0's output write fails (a disk error): its transaction is committed but unfinished
    // (UNAVAILABLE), its offset written, so the message is consumed; the next open finishes it.
    const publish = TopicManager.prototype.publish;
    let failed = false;
    const spy = vi.spyOn(TopicManager.prototype, 'publish').mockImplementation(function (this: TopicManager, ...args) {
      if (args[0] === 'out' && !failed) {
        failed = true;
        return Promise.reject(new Error('disk I/O error'));
      }
      return publish.apply(this, args);
    });
    cleanups.push(() => spy.mockRestore());
    const errors: string[] = [];
    const handled: unknown[] = [];
    await subscribe(t.broker, async (m) => {
      handled.push(m.payload);
      try {
        await processOnce(t.broker, m);
      } catch (err) {
        errors.push((err as Error).message);
        throw err;
      }
    });
    await waitFor(async () => (await committed(t.broker)) === 4, 'messages 1-3 processed');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/finished when the broker reopens/);
    expect(handled).toEqual([0, 1, 2, 3]);
    expect(await outputs(t.broker)).toBe(3);
    const broker = await t.restart();
    expect(broker.recoveredIntents).toBe(1);
    expect(await outputs(broker)).toBe(4); // message 0's output, finished by recovery
    expect(await committed(broker)).toBe(4);
    const again: unknown[] = [];
    await subscribe(broker, async (m) => {
      again.push(m.payload);
      await processOnce(broker, m);
    });
    await broker.publish('in', { payload: 4 });
    await waitFor(() => again.length > 0, 'the group gets a message after the restart');
    await waitFor(async () => (await committed(broker)) === 5, 'message 4 processed');
    expect(again).toEqual([4]);
    expect(await outputs(broker)).toBe(5);
  });

  it('a crash before its intent is marked done does not undo a seek back made after it', async () => {
    const t = await setup(4);
    loseDoneEntries();
    let seeked = false;
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const redelivered: unknown[] = [];
    const sub = await subscribe(t.broker, async (m) => {
      if (!seeked) return m.payload === 0 ? processOnce(t.broker, m) : undefined;
      redelivered.push(m.payload);
      await gate; // reprocessing message 0 when the process dies
    });
    await waitFor(async () => (await committed(t.broker)) === 4, 'the member committed past message 3');
    seeked = true;
    await sub.seek({ offset: 0 }); // to process everything again, message 0 included
    await waitFor(() => redelivered.length > 0, 'message 0 delivered again');
    expect(await committed(t.broker)).toBe(0);
    const reopening = t.crashRestart(); // the crash image is taken before its first await
    open();
    const broker = await reopening;
    expect(broker.recoveredIntents).toBe(1);
    expect(await committed(broker)).toBe(0);
  });
});
