// Durable committed offsets of consumer groups: a compacted journal (['groups', 'offsets']) of
// { topic, group, partition, offset } entries, replayed into a map on open. When the journal holds
// many superseded entries it is rewritten as a snapshot of the map (Kafka's __consumer_offsets, in small).
import { WharfError } from '../../common/index.js';
import type { Journal, JournalOptions, Storage } from '../../storage/index.js';

const JOURNAL_PATH = ['groups', 'offsets'];
/** Rewrite once the journal is this big and mostly superseded entries. */
const COMPACT_MIN_BYTES = 1024 * 1024;

type Entry = { t: string; g?: string; p?: number; o?: number; del?: 1 };

export class OffsetStore {
  /** topic -> group -> committed offset per partition (index = partition, -1 = none). */
  private readonly offsets = new Map<string, Map<string, number[]>>();
  private inflight = 0;
  private idle: Array<() => void> = [];
  private compacting: Promise<void> | null = null;

  private constructor(private readonly journal: Journal) {}

  static async open(storage: Storage, options: JournalOptions): Promise<OffsetStore> {
    const journal = await storage.openJournal(JOURNAL_PATH, options);
    const store = new OffsetStore(journal);
    for (const bytes of journal.entries()) {
      let e: Entry;
      try {
        e = JSON.parse(Buffer.from(bytes).toString('utf8')) as Entry;
      } catch (err) {
        throw new WharfError('CORRUPT_DATA', 'a group offset journal entry is not valid JSON', { cause: err });
      }
      store.apply(e);
    }
    return store;
  }

  /** Committed offset, or undefined when the group has none for the partition. */
  get(topic: string, group: string, partition: number): number | undefined {
    const v = this.offsets.get(topic)?.get(group)?.[partition];
    return v === undefined || v < 0 ? undefined : v;
  }

  /** group -> committed offsets per partition (-1 = none) for a topic. */
  groupsOf(topic: string): ReadonlyMap<string, readonly number[]> {
    return this.offsets.get(topic) ?? new Map();
  }

  async commit(topic: string, group: string, partition: number, offset: number): Promise<void> {
    await this.write({ t: topic, g: group, p: partition, o: offset });
  }

  /** Forgets every group's offsets of a deleted topic. */
  async deleteTopic(topic: string): Promise<void> {
    if (!this.offsets.has(topic)) return;
    await this.write({ t: topic, del: 1 });
  }

  async close(): Promise<void> {
    await this.drain();
    await this.compacting;
    await this.journal.close();
  }

  private apply(e: Entry): void {
    if (e.del === 1) {
      this.offsets.delete(e.t);
      return;
    }
    let groups = this.offsets.get(e.t);
    if (groups === undefined) this.offsets.set(e.t, (groups = new Map()));
    let arr = groups.get(e.g!);
    if (arr === undefined) groups.set(e.g!, (arr = []));
    while (arr.length <= e.p!) arr.push(-1);
    arr[e.p!] = e.o!;
  }

  private async write(e: Entry): Promise<void> {
    while (this.compacting !== null) await this.compacting;
    // The map changes when the entry is durable, so a reader never sees an offset a crash could lose.
    this.inflight++;
    try {
      await this.journal.append(Buffer.from(JSON.stringify(e), 'utf8'));
      this.apply(e);
    } finally {
      if (--this.inflight === 0) for (const wake of this.idle.splice(0)) wake();
    }
    this.maybeCompact();
  }

  private drain(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private maybeCompact(): void {
    if (this.compacting !== null || this.journal.sizeBytes < COMPACT_MIN_BYTES) return;
    const snapshot = this.snapshot();
    let liveBytes = 0;
    for (const s of snapshot) liveBytes += s.length;
    if (this.journal.sizeBytes < liveBytes * 4) return;
    this.compacting = (async () => {
      await this.drain();
      // Appends wait for this rewrite, so the snapshot taken after the drain is complete.
      await this.journal.rewrite(this.snapshot());
    })()
      // A failed rewrite leaves the journal as it was; the next commit tries again.
      .catch(() => undefined)
      .finally(() => {
        this.compacting = null;
      });
  }

  private snapshot(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const [t, groups] of this.offsets) {
      for (const [g, arr] of groups) {
        arr.forEach((o, p) => {
          if (o >= 0) out.push(Buffer.from(JSON.stringify({ t, g, p, o }), 'utf8'));
        });
      }
    }
    return out;
  }
}
