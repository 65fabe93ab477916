// The intent journal that makes multi-target writes crash-atomic: an intent whose begin entry is
// durable is rolled forward on reopen, exactly once per target; one that never began leaves nothing.
import { describe, expect, it } from 'vitest';
import { IntentJournal, decodeIntentEntry, encodeIntentEntry, type IntentOp } from '../../src/broker/exchanges/intent-journal.js';
import type { Journal } from '../../src/storage/index.js';

/** A journal whose durable entries outlive the IntentJournal using it, as files outlive a process. */
class DurableEntries implements Journal {
  entriesStored: Uint8Array[] = [];
  failAppendAt = -1;
  private appends = 0;
  get sizeBytes(): number {
    return this.entriesStored.reduce((n, e) => n + e.length, 0);
  }
  async append(entry: Uint8Array): Promise<void> {
    if (this.appends++ === this.failAppendAt) throw new Error('disk full');
    this.entriesStored.push(entry);
  }
  async rewrite(entries: Uint8Array[]): Promise<void> {
    this.entriesStored = [...entries];
  }
  entries(): Iterable<Uint8Array> {
    return this.entriesStored;
  }
  async close(): Promise<void> {}
}

/** Targets that dedup by dedupId, like queues and topics within their window. */
class Targets {
  readonly stored = new Map<string, string[]>();
  writesBeforeCrash = Infinity;
  apply = async (op: IntentOp): Promise<void> => {
    if (op.op !== 'write') return;
    if (this.writesBeforeCrash-- <= 0) throw new Error('process killed');
    const list = this.stored.get(op.name) ?? [];
    for (const m of op.messages) if (!list.includes(m.dedupId!)) list.push(m.dedupId!);
    this.stored.set(op.name, list);
  };
}

const ops = (names: string[], id: string): IntentOp[] => names.map((name) => ({ op: 'write', kind: 'queue', name, messages: [{ id, dedupId: id, payload: { id } }] }));

describe('intent journal (atomic multi-target writes)', () => {
  it('applies every op of an intent and leaves nothing pending', async () => {
    const disk = new DurableEntries();
    const targets = new Targets();
    const journal = new IntentJournal(disk);
    await journal.run({ id: 't1', ops: ops(['a', 'b', 'c'], 'm1') }, targets.apply);
    expect([...targets.stored.keys()].sort()).toEqual(['a', 'b', 'c']);
    await journal.close();
    expect(new IntentJournal(disk).pendingOnOpen()).toEqual([]);
  });

  it('rolls an interrupted intent forward on reopen, never duplicating what was written', async () => {
    for (let crashAfter = 0; crashAfter < 3; crashAfter++) {
      const disk = new DurableEntries();
      const targets = new Targets();
      targets.writesBeforeCrash = crashAfter;
      await expect(new IntentJournal(disk).run({ id: 't', ops: ops(['a', 'b', 'c'], 'm') }, targets.apply)).rejects.toThrow(/finished when the broker reopens/);
      targets.writesBeforeCrash = Infinity;
      const reopened = new IntentJournal(disk);
      expect(reopened.pendingOnOpen().map((i) => i.id)).toEqual(['t']);
      expect(await reopened.recover(targets.apply)).toBe(1);
      expect(targets.stored.get('a')).toEqual(['m']);
      expect(targets.stored.get('b')).toEqual(['m']);
      expect(targets.stored.get('c')).toEqual(['m']);
      expect(new IntentJournal(disk).pendingOnOpen()).toEqual([]);
    }
  });

  it('a replay of an intent that was fully applied (done marker lost) stores nothing twice', async () => {
    const disk = new DurableEntries();
    const targets = new Targets();
    disk.failAppendAt = 1; // the begin entry is durable, the done entry is lost
    await new IntentJournal(disk).run({ id: 't', ops: ops(['a', 'b'], 'm') }, targets.apply);
    const reopened = new IntentJournal(disk);
    expect(await reopened.recover(targets.apply)).toBe(1);
    expect(targets.stored.get('a')).toEqual(['m']);
    expect(targets.stored.get('b')).toEqual(['m']);
  });

  it('writes nothing anywhere when the begin entry cannot be made durable', async () => {
    const disk = new DurableEntries();
    disk.failAppendAt = 0;
    const targets = new Targets();
    await expect(new IntentJournal(disk).run({ id: 't', ops: ops(['a', 'b'], 'm') }, targets.apply)).rejects.toThrow(/disk full/);
    expect(targets.stored.size).toBe(0);
    expect(new IntentJournal(disk).pendingOnOpen()).toEqual([]);
  });

  it('round-trips byte payloads through the journal encoding', () => {
    const entry = { t: 'begin' as const, id: 'x', ops: [{ op: 'write' as const, kind: 'topic' as const, name: 't', messages: [{ payload: new Uint8Array([1, 2, 255]) }] }] };
    const back = decodeIntentEntry(encodeIntentEntry(entry));
    expect(back).toEqual(entry);
    expect((back as typeof entry).ops[0].messages[0].payload).toBeInstanceOf(Uint8Array);
  });
});

describe('intent journal recovery when a target still refuses', () => {
  it('keeps the intent for the next open instead of failing the open', async () => {
    const disk = new DurableEntries();
    const targets = new Targets();
    targets.writesBeforeCrash = 0;
    await expect(new IntentJournal(disk).run({ id: 't', ops: ops(['a', 'b'], 'm') }, targets.apply)).rejects.toThrow();
    targets.writesBeforeCrash = 1; // 'a' succeeds, 'b' is refused again
    const second = new IntentJournal(disk);
    await second.recover(targets.apply);
    expect(second.unfinishedCount).toBe(1);
    targets.writesBeforeCrash = Infinity;
    const third = new IntentJournal(disk);
    expect(third.pendingOnOpen().map((i) => i.id)).toEqual(['t']);
    await third.recover(targets.apply);
    expect(third.unfinishedCount).toBe(0);
    expect(targets.stored.get('a')).toEqual(['m']);
    expect(targets.stored.get('b')).toEqual(['m']);
  });
});
