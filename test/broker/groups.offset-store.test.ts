// The committed-offset store: writes land in the order they are made, also around a compaction (the
// group coordinator orders a member's commits against a transaction's by when it makes them), and a
// transaction's commit rolled forward at recovery writes nothing over a commit decided after it,
// also once the journal was compacted.
import { describe, expect, it } from 'vitest';
import type { Journal, Storage } from '../../src/storage/index.js';
import { OffsetStore } from '../../src/broker/topics/offset-store.js';

const JOURNAL_OPTIONS = { fsync: 'always', fsyncIntervalMs: 1000 } as const;

/** One journal kept in an array (it survives a reopen), whose size and rewrites a test controls. */
class KeptJournal {
  readonly entries: Uint8Array[] = [];
  /** Reported instead of the entries' size while set: makes the store compact at its next write. */
  sizeBytesShown: number | null = null;
  /** A rewrite waits for it (a slow disk). */
  rewriteGate: Promise<void> = Promise.resolve();
  rewrites = 0;

  storage(): Storage {
    const journal: Journal = {
      append: async (e) => void this.entries.push(e),
      rewrite: async (es) => {
        this.rewrites++;
        await this.rewriteGate;
        this.entries.splice(0, this.entries.length, ...es);
      },
      entries: () => [...this.entries],
      sizeBytes: 0,
      close: async () => undefined,
    };
    Object.defineProperty(journal, 'sizeBytes', {
      get: () => this.sizeBytesShown ?? this.entries.reduce((n, e) => n + e.length, 0),
    });
    return { openJournal: async () => journal } as unknown as Storage;
  }

  /** The offsets written for topic t, group g, partition 0, in journal order. */
  offsetsWritten(): number[] {
    return this.entries
      .map((e) => JSON.parse(Buffer.from(e).toString('utf8')) as { t: string; p?: number; o?: number })
      .filter((e) => e.t === 't' && e.p === 0)
      .map((e) => e.o!);
  }
}

/** Lets `turns` microtasks run. */
async function microtasks(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

describe('offset store', () => {
  it('a write made after another lands after it, also when the first waited for a compaction to end', async () => {
    // The later write is made at every microtask of the compaction's end in turn.
    for (let delay = 0; delay < 30; delay++) {
      const disk = new KeptJournal();
      const store = await OffsetStore.open(disk.storage(), JOURNAL_OPTIONS);
      let endRewrite!: () => void;
      disk.rewriteGate = new Promise<void>((r) => (endRewrite = r));
      disk.sizeBytesShown = 2 * 1024 * 1024; // mostly superseded entries: the next write compacts
      await store.commit('t', 'g', 0, 1);
      expect(disk.rewrites).toBe(1);
      disk.sizeBytesShown = null;
      const first = store.commit('t', 'g', 0, 5); // a member's commit, waiting for the rewrite
      endRewrite();
      await microtasks(delay);
      const second = store.commit('t', 'g', 0, 9); // a transaction's, made after it
      await Promise.all([first, second]);
      expect(store.get('t', 'g', 0), `later write made ${delay} microtasks after the rewrite ended`).toBe(9);
      expect(disk.offsetsWritten().slice(-2)).toEqual([5, 9]);
      await store.close();
    }
  });

  it('a roll-forward writes nothing over a commit decided after it, also after a compaction', async () => {
    const disk = new KeptJournal();
    const before = await OffsetStore.open(disk.storage(), JOURNAL_OPTIONS);
    const applied = before.nextCommitSequence(); // a transaction's, written before the crash
    await before.commit('t', 'g', 0, 5, applied);
    await before.commit('t', 'g', 0, 9); // the member's, after it
    const unapplied = before.nextCommitSequence(); // a transaction's, not written before the crash
    disk.sizeBytesShown = 2 * 1024 * 1024;
    await before.commit('t', 'g', 1, 3);
    disk.sizeBytesShown = null;
    await before.close();
    expect(disk.rewrites).toBe(1);
    expect(disk.offsetsWritten()).toEqual([9]); // partition 0's entry, as the snapshot holds it

    const after = await OffsetStore.open(disk.storage(), JOURNAL_OPTIONS);
    expect(await after.commitUnlessSuperseded('t', 'g', 0, 5, applied)).toBe(false);
    expect(after.get('t', 'g', 0)).toBe(9);
    expect(await after.commitUnlessSuperseded('t', 'g', 0, 10, unapplied)).toBe(true);
    expect(after.get('t', 'g', 0)).toBe(10);
    // Applied once, it is not applied again (recovery retries an unfinished intent at every open).
    expect(await after.commitUnlessSuperseded('t', 'g', 0, 10, unapplied)).toBe(false);
    // A commit decided after the roll-forward (a seek back, say) stays over it at the next open.
    await after.commit('t', 'g', 0, 2);
    await after.close();
    const next = await OffsetStore.open(disk.storage(), JOURNAL_OPTIONS);
    expect(await next.commitUnlessSuperseded('t', 'g', 0, 10, unapplied)).toBe(false);
    expect(next.get('t', 'g', 0)).toBe(2);
  });
});
