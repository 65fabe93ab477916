// Durable committed offsets of consumer groups: a compacted journal (['groups', 'offsets']) of
// { topic, group, partition, offset, sequence } entries, replayed into a map on open. When the journal
// holds many superseded entries it is rewritten as a snapshot of the map (Kafka's __consumer_offsets,
// in small). Every commit has a sequence, taken when it is decided, and each partition keeps the
// highest one written: recovery rolls a transaction's commit forward only when nothing decided after
// it was written, so a replay never moves a group's offset back over a later commit.
import { WharfError, assert } from '../../common/index.js';
import type { Journal, JournalOptions, Storage } from '../../storage/index.js';

const JOURNAL_PATH = ['groups', 'offsets'];
/** Rewrite once the journal is this big and mostly superseded entries. */
const COMPACT_MIN_BYTES = 1024 * 1024;

/** s: the commit's sequence (absent in entries of an older broker: 0). */
type Entry = { t: string; g?: string; p?: number; o?: number; s?: number; del?: 1 };

export class OffsetStore {
  /** topic -> group -> committed offset per partition (index = partition, -1 = none). */
  private readonly offsets = new Map<string, Map<string, number[]>>();
  /** topic -> group -> the highest sequence written per partition (0: none). */
  private readonly sequences = new Map<string, Map<string, number[]>>();
  /** Above every sequence written or handed out (nextCommitSequence). */
  private sequenceAfter = 1;
  private inflight = 0;
  private idle: Array<() => void> = [];
  private compacting: Promise<void> | null = null;
  /** Writes made while a rewrite runs, appended in the order they were made as soon as it ends. */
  private readonly queued: Array<() => void> = [];

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

  /**
   * The sequence of a commit decided now and written later: a transaction's, whose intent carries it
   * (commitUnlessSuperseded at recovery). Sequences grow in the order commits are decided.
   */
  nextCommitSequence(): number {
    return this.sequenceAfter++;
  }

  /** Writes a committed offset; `sequence` is the one taken when it was decided, else a fresh one. */
  async commit(
    topic: string,
    group: string,
    partition: number,
    offset: number,
    sequence: number = this.nextCommitSequence(),
  ): Promise<void> {
    assert(Number.isSafeInteger(sequence) && sequence > 0, `a commit sequence is a positive integer, not ${sequence}`);
    await this.write({ t: topic, g: group, p: partition, o: offset, s: sequence });
  }

  /**
   * A commit rolled forward by recovery (a transaction's intent with no `done`): written unless a
   * commit of the partition with this sequence or a later one is written, that is unless it was
   * applied before the crash or a commit decided after it (the member's, a seek, another
   * transaction's) is stored; rewriting it would move the group's offset back. False: not written.
   */
  async commitUnlessSuperseded(
    topic: string,
    group: string,
    partition: number,
    offset: number,
    sequence: number,
  ): Promise<boolean> {
    // A commit decided after this one, from now on, has a later sequence (also when this is not written).
    this.sequenceAfter = Math.max(this.sequenceAfter, sequence + 1);
    if (sequence <= this.writtenSequence(topic, group, partition)) return false;
    await this.commit(topic, group, partition, offset, sequence);
    return true;
  }

  /** The highest sequence written for the partition, 0 when none. */
  private writtenSequence(topic: string, group: string, partition: number): number {
    return this.sequences.get(topic)?.get(group)?.[partition] ?? 0;
  }

  /** Forgets every group's offsets of a deleted topic. */
  async deleteTopic(topic: string): Promise<void> {
    if (!this.offsets.has(topic)) return;
    await this.write({ t: topic, del: 1 });
  }

  async close(): Promise<void> {
    // A rewrite ends by appending the writes queued behind it: those are waited for too.
    do {
      await this.drain();
      await this.compacting;
    } while (this.inflight > 0 || this.compacting !== null);
    await this.journal.close();
  }

  private apply(e: Entry): void {
    if (e.del === 1) {
      this.offsets.delete(e.t);
      this.sequences.delete(e.t);
      return;
    }
    // The last written offset holds (writes land in the order they are made); its sequence may be
    // below one written before it (a transaction's, decided earlier and written later): keep the highest.
    slot(this.offsets, e.t, e.g!, e.p!, -1)[e.p!] = e.o!;
    const sequences = slot(this.sequences, e.t, e.g!, e.p!, 0);
    const sequence = e.s ?? 0;
    sequences[e.p!] = Math.max(sequences[e.p!], sequence);
    this.sequenceAfter = Math.max(this.sequenceAfter, sequence + 1);
  }

  /**
   * Writes land in the order they are made: the group coordinator orders a member's commit against a
   * transaction's by when it makes them (a lower one written after a higher one moves the group's
   * offset back). A write made while a rewrite runs waits in line, and the line is appended, in
   * order, in the same step that ends the rewrite: no write made later can be appended before it.
   */
  private write(e: Entry): Promise<void> {
    if (this.compacting === null) return this.append(e);
    return new Promise<void>((resolve, reject) => this.queued.push(() => this.append(e).then(resolve, reject)));
  }

  /** Appends at once (the journal takes appends in call order). */
  private async append(e: Entry): Promise<void> {
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
      // Writes wait for this rewrite (queued), so the snapshot taken after the drain is complete.
      await this.journal.rewrite(this.snapshot());
    })()
      // A failed rewrite leaves the journal as it was; the next commit tries again.
      .catch(() => undefined)
      .finally(() => {
        this.compacting = null;
        // In this same step, so a write made from here on is appended after the queued ones.
        for (const append of this.queued.splice(0)) append();
      });
  }

  private snapshot(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const [t, groups] of this.offsets) {
      for (const [g, arr] of groups) {
        arr.forEach((o, p) => {
          if (o >= 0) {
            const entry: Entry = { t, g, p, o, s: this.writtenSequence(t, g, p) };
            out.push(Buffer.from(JSON.stringify(entry), 'utf8'));
          }
        });
      }
    }
    return out;
  }
}

/** The per-partition array of a topic's group in `map`, grown to hold `partition` with `empty`. */
function slot(
  map: Map<string, Map<string, number[]>>,
  topic: string,
  group: string,
  partition: number,
  empty: number,
): number[] {
  let groups = map.get(topic);
  if (groups === undefined) map.set(topic, (groups = new Map()));
  let arr = groups.get(group);
  if (arr === undefined) groups.set(group, (arr = []));
  while (arr.length <= partition) arr.push(empty);
  return arr;
}
