// The intent journal that makes multi-target writes crash-atomic: an intent whose begin entry is
// durable is rolled forward on reopen, exactly once per target; one that never began leaves nothing.
import { describe, expect, it } from 'vitest';
import { decodeIntentEntry, encodeIntentEntry } from '../../src/broker/exchanges/intent-entry.js';
import { IntentJournal, type IntentOp } from '../../src/broker/exchanges/intent-journal.js';
import type { PublishResult } from '../../src/broker/index.js';
import type { Journal } from '../../src/storage/index.js';
import { JsonText } from '../../src/common/index.js';

/** A journal whose durable entries outlive the IntentJournal using it, as files outlive a process. */
class DurableEntries implements Journal {
  entriesStored: Uint8Array[] = [];
  failAppendAt = -1;
  rewrites = 0;
  private appends = 0;
  get sizeBytes(): number {
    return this.entriesStored.reduce((n, e) => n + e.length, 0);
  }
  async append(entry: Uint8Array): Promise<void> {
    if (this.appends++ === this.failAppendAt) throw new Error('disk full');
    this.entriesStored.push(entry);
  }
  async rewrite(entries: Uint8Array[]): Promise<void> {
    this.rewrites++;
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

const ops = (names: string[], id: string): IntentOp[] =>
  names.map((name) => ({ op: 'write', kind: 'queue', name, messages: [{ id, dedupId: id, payload: { id } }] }));

describe('intent journal (atomic multi-target writes)', () => {
  it('applies every op of an intent and leaves nothing pending', async () => {
    const disk = new DurableEntries();
    const targets = new Targets();
    const journal = new IntentJournal(disk, { apply: targets.apply });
    await journal.run({ id: 't1', ops: ops(['a', 'b', 'c'], 'm1') });
    expect([...targets.stored.keys()].sort()).toEqual(['a', 'b', 'c']);
    await journal.close();
    expect(new IntentJournal(disk, { apply: targets.apply }).pendingOnOpen()).toEqual([]);
  });

  it('rolls an interrupted intent forward on reopen, never duplicating what was written', async () => {
    for (let crashAfter = 0; crashAfter < 3; crashAfter++) {
      const disk = new DurableEntries();
      const targets = new Targets();
      targets.writesBeforeCrash = crashAfter;
      await expect(
        new IntentJournal(disk, { apply: targets.apply }).run({ id: 't', ops: ops(['a', 'b', 'c'], 'm') }),
      ).rejects.toThrow(/finished when the broker reopens/);
      targets.writesBeforeCrash = Infinity;
      const reopened = new IntentJournal(disk, { apply: targets.apply });
      expect(reopened.pendingOnOpen().map((i) => i.id)).toEqual(['t']);
      expect(await reopened.recover()).toBe(1);
      expect(targets.stored.get('a')).toEqual(['m']);
      expect(targets.stored.get('b')).toEqual(['m']);
      expect(targets.stored.get('c')).toEqual(['m']);
      expect(new IntentJournal(disk, { apply: targets.apply }).pendingOnOpen()).toEqual([]);
    }
  });

  it('a replay of an intent that was fully applied (done marker lost) stores nothing twice', async () => {
    const disk = new DurableEntries();
    const targets = new Targets();
    disk.failAppendAt = 1; // the begin entry is durable, the done entry is lost
    await new IntentJournal(disk, { apply: targets.apply }).run({ id: 't', ops: ops(['a', 'b'], 'm') });
    const reopened = new IntentJournal(disk, { apply: targets.apply });
    expect(await reopened.recover()).toBe(1);
    expect(targets.stored.get('a')).toEqual(['m']);
    expect(targets.stored.get('b')).toEqual(['m']);
  });

  it('writes nothing anywhere when the begin entry cannot be made durable', async () => {
    const disk = new DurableEntries();
    disk.failAppendAt = 0;
    const targets = new Targets();
    await expect(
      new IntentJournal(disk, { apply: targets.apply }).run({ id: 't', ops: ops(['a', 'b'], 'm') }),
    ).rejects.toThrow(/disk full/);
    expect(targets.stored.size).toBe(0);
    expect(new IntentJournal(disk, { apply: targets.apply }).pendingOnOpen()).toEqual([]);
  });

  it('round-trips byte payloads through the journal encoding, storing a message shared by several ops once', () => {
    const shared = { id: 'm', dedupId: 'm', payload: new Uint8Array([1, 2, 255]), headers: { h: 'v' } };
    const entry = {
      begun: [
        {
          id: 'x',
          ops: [
            { op: 'write' as const, kind: 'topic' as const, name: 't', messages: [shared] },
            { op: 'write' as const, kind: 'queue' as const, name: 'q', messages: [shared] },
          ],
        },
        {
          id: 'y',
          ops: [
            { op: 'ack' as const, queue: 'q', id: 'm0', receipt: 'r' },
            { op: 'write' as const, kind: 'queue' as const, name: 'q', messages: [{ payload: { json: [1, 'two'] } }] },
          ],
        },
      ],
      done: ['w'],
    };
    const bytes = encodeIntentEntry(entry);
    const back = decodeIntentEntry(bytes);
    expect(back).toEqual(entry);
    const [first, second] = back.begun[0].ops as Array<Extract<IntentOp, { op: 'write' }>>;
    expect(first.messages[0].payload).toBeInstanceOf(Uint8Array);
    expect(first.messages[0]).toBe(second.messages[0]);
    expect(Buffer.from(bytes).indexOf(Buffer.from([1, 2, 255]))).toBe(
      Buffer.from(bytes).lastIndexOf(Buffer.from([1, 2, 255])),
    );
  });

  it('keeps a JSON payload given as its text (from the wire) JSON, not bytes', () => {
    const text = JsonText.over(Buffer.from('{"a": [1, 2]}'));
    const entry = {
      begun: [
        {
          id: 'x',
          ops: [
            {
              op: 'write' as const,
              kind: 'queue' as const,
              name: 'q',
              messages: [{ payload: text }, { payload: new Uint8Array([7]) }],
            },
          ],
        },
      ],
      done: [],
    };
    const back = decodeIntentEntry(encodeIntentEntry(entry));
    const [json, bytes] = (back.begun[0].ops[0] as Extract<IntentOp, { op: 'write' }>).messages;
    expect(json.payload).toBeInstanceOf(JsonText);
    expect(Buffer.from(json.payload as Uint8Array).toString()).toBe('{"a": [1, 2]}');
    expect(bytes.payload).toBeInstanceOf(Uint8Array);
    expect(bytes.payload).not.toBeInstanceOf(JsonText);
  });

  it('reads entries of the one-intent-per-entry format an older broker left behind', async () => {
    const legacy = (e: unknown): Uint8Array => Buffer.from(JSON.stringify(e), 'utf8');
    const disk = new DurableEntries();
    const message = { id: 'm', dedupId: 'm', payload: { __wharfBytes: Buffer.from([9, 8]).toString('base64') } };
    disk.entriesStored = [
      legacy({ t: 'begin', id: 'old-done', ops: [] }),
      legacy({ t: 'begin', id: 'old', ops: [{ op: 'write', kind: 'queue', name: 'a', messages: [message] }] }),
      legacy({ t: 'done', id: 'old-done' }),
    ];
    const written: unknown[] = [];
    const journal = new IntentJournal(disk, {
      apply: async (op) => void written.push(op.op === 'write' ? op.messages[0].payload : op),
    });
    expect(journal.pendingOnOpen().map((i) => i.id)).toEqual(['old']);
    expect(await journal.recover()).toBe(1);
    expect(written).toEqual([new Uint8Array([9, 8])]);
  });
});

describe('intent journal rounds (concurrent intents share one entry and one write per target)', () => {
  /** Records every write call; a target in `refuse` rejects any call that carries a refused message. */
  class RecordingTargets {
    readonly calls: Array<{ name: string; ids: string[] }> = [];
    readonly refuse = new Set<string>();
    apply = async (op: IntentOp): Promise<void> => {
      if (op.op !== 'write') return;
      const ids = op.messages.map((m) => m.dedupId!);
      this.calls.push({ name: op.name, ids });
      if (ids.some((id) => this.refuse.has(id))) throw new Error(`refused ${ids.join(',')}`);
    };
  }
  const fanOut = (id: string, names: string[]): { id: string; ops: IntentOp[] } => ({ id, ops: ops(names, id) });

  it('intents submitted together are begun in one entry and each target gets one write, in submission order', async () => {
    const disk = new DurableEntries();
    const targets = new RecordingTargets();
    const journal = new IntentJournal(disk, { apply: targets.apply, mergeable: () => true });
    await Promise.all(['p1', 'p2', 'p3'].map((id) => journal.run(fanOut(id, ['a', 'b']))));
    expect(journal.roundCount).toBe(1);
    expect(disk.entriesStored).toHaveLength(1);
    expect(decodeIntentEntry(disk.entriesStored[0]).begun.map((i) => i.id)).toEqual(['p1', 'p2', 'p3']);
    expect(targets.calls.sort((x, y) => x.name.localeCompare(y.name))).toEqual([
      { name: 'a', ids: ['p1', 'p2', 'p3'] },
      { name: 'b', ids: ['p1', 'p2', 'p3'] },
    ]);
    await journal.close();
    expect(new IntentJournal(disk, { apply: targets.apply }).pendingOnOpen()).toEqual([]);
  });

  it('a target that is not mergeable gets one write per intent', async () => {
    const targets = new RecordingTargets();
    const journal = new IntentJournal(new DurableEntries(), {
      apply: targets.apply,
      mergeable: (t) => t.name !== 'bounded',
    });
    await Promise.all(['p1', 'p2'].map((id) => journal.run(fanOut(id, ['a', 'bounded']))));
    expect(targets.calls.filter((c) => c.name === 'a')).toEqual([{ name: 'a', ids: ['p1', 'p2'] }]);
    expect(targets.calls.filter((c) => c.name === 'bounded')).toEqual([
      { name: 'bounded', ids: ['p1'] },
      { name: 'bounded', ids: ['p2'] },
    ]);
  });

  it('a refused merged write fails only the intents whose own part is refused; the rest are done', async () => {
    const disk = new DurableEntries();
    const targets = new RecordingTargets();
    targets.refuse.add('p2');
    const journal = new IntentJournal(disk, { apply: targets.apply, mergeable: () => true });
    const outcomes = await Promise.allSettled(['p1', 'p2', 'p3'].map((id) => journal.run(fanOut(id, ['a']))));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'UNAVAILABLE' });
    expect(targets.calls).toEqual([
      { name: 'a', ids: ['p1', 'p2', 'p3'] },
      { name: 'a', ids: ['p1'] },
      { name: 'a', ids: ['p2'] },
      { name: 'a', ids: ['p3'] },
    ]);
    expect(journal.unfinishedCount).toBe(1);
    await journal.close();
    expect(new IntentJournal(disk, { apply: targets.apply }).pendingOnOpen().map((i) => i.id)).toEqual(['p2']);
  });

  it('intents submitted while an entry is being written share the next entry', async () => {
    const disk = new DurableEntries();
    let release!: () => void;
    const firstWrite = new Promise<void>((resolve) => (release = resolve));
    const append = disk.append.bind(disk);
    disk.append = async (entry) => {
      if (disk.entriesStored.length === 0) await firstWrite;
      return append(entry);
    };
    const targets = new RecordingTargets();
    const journal = new IntentJournal(disk, { apply: targets.apply, mergeable: () => true });
    const first = journal.run(fanOut('p1', ['a']));
    await new Promise((resolve) => setImmediate(resolve));
    const later = ['p2', 'p3', 'p4'].map((id) => journal.run(fanOut(id, ['a'])));
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await Promise.all([first, ...later]);
    expect(disk.entriesStored.map((e) => decodeIntentEntry(e).begun.map((i) => i.id))).toEqual([
      ['p1'],
      ['p2', 'p3', 'p4'],
    ]);
    expect(journal.roundCount).toBe(2);
  });

  it('each intent resolves with what its targets said of its own messages, also from a merged write', async () => {
    // Targets that answer a repeated dedupId with the id they hold it under, as queues and topics do.
    const held = new Map<string, string>();
    const calls: Array<{ name: string; ids: string[] }> = [];
    const apply = async (op: IntentOp): Promise<PublishResult[] | void> => {
      if (op.op !== 'write') return;
      calls.push({ name: op.name, ids: op.messages.map((m) => m.id!) });
      return op.messages.map((m) => {
        const key = `${op.name}:${m.dedupId}`;
        const original = held.get(key);
        if (original !== undefined) return { id: original, duplicate: true };
        held.set(key, m.id!);
        return { id: m.id! };
      });
    };
    const write = (name: string, id: string, dedupId: string): IntentOp => ({
      op: 'write',
      kind: 'queue',
      name,
      messages: [{ id, dedupId }],
    });
    const journal = new IntentJournal(new DurableEntries(), { apply, mergeable: (t) => t.name !== 'bounded' });
    // p2 repeats p1's dedupId in the same round, to a merged target and to one written per intent.
    const [p1, p2, p3] = await Promise.all([
      journal.run({ id: 'p1', ops: [write('a', 'm1', 'd'), write('bounded', 'm1', 'd')] }),
      journal.run({
        id: 'p2',
        ops: [write('a', 'm2', 'd'), { op: 'ack', queue: 'a', id: 'x', receipt: 'r' }, write('bounded', 'm2', 'd')],
      }),
      journal.run({ id: 'p3', ops: [write('a', 'm3', 'e')] }),
    ]);
    expect(journal.roundCount).toBe(1);
    expect(calls.filter((c) => c.name === 'a')).toEqual([{ name: 'a', ids: ['m1', 'm2', 'm3'] }]);
    expect(p1).toEqual([[{ id: 'm1' }], [{ id: 'm1' }]]);
    expect(p2).toEqual([[{ id: 'm1', duplicate: true }], null, [{ id: 'm1', duplicate: true }]]);
    expect(p3).toEqual([[{ id: 'm3' }]]);
  });

  it('compaction under load keeps the intents still applying, so a crash right after it loses none', async () => {
    const disk = new DurableEntries();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const apply = async (op: IntentOp): Promise<void> => {
      if (op.op === 'write' && op.messages.some((m) => m.dedupId === 'slow')) await gate;
    };
    const journal = new IntentJournal(disk, { apply, compactBytes: 1 });
    const slow = journal.run(fanOut('slow', ['a', 'b']));
    await new Promise((resolve) => setImmediate(resolve));
    await journal.run(fanOut('fast', ['a', 'b']));
    await new Promise((resolve) => setImmediate(resolve));
    // The journal was rewritten while 'slow' was applying: a reopen now must still finish 'slow'.
    expect(disk.rewrites).toBeGreaterThan(0);
    expect(new IntentJournal(disk, { apply }).pendingOnOpen().map((i) => i.id)).toEqual(['slow']);
    release();
    await slow;
    await journal.close();
    expect(new IntentJournal(disk, { apply }).pendingOnOpen()).toEqual([]);
  });

  it('a crash after a round began rolls every intent of the round forward', async () => {
    const disk = new DurableEntries();
    const targets = new Targets();
    targets.writesBeforeCrash = 1; // the merged write to 'a' lands, the one to 'b' dies with the process
    const journal = new IntentJournal(disk, { apply: targets.apply, mergeable: () => true });
    const outcomes = await Promise.allSettled(['p1', 'p2'].map((id) => journal.run(fanOut(id, ['a', 'b']))));
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    targets.writesBeforeCrash = Infinity;
    const reopened = new IntentJournal(disk, { apply: targets.apply });
    expect(await reopened.recover()).toBe(2);
    expect(targets.stored.get('a')).toEqual(['p1', 'p2']);
    expect(targets.stored.get('b')).toEqual(['p1', 'p2']);
  });
});

describe('intent journal recovery when a target still refuses', () => {
  it('keeps the intent for the next open instead of failing the open', async () => {
    const disk = new DurableEntries();
    const targets = new Targets();
    targets.writesBeforeCrash = 0;
    await expect(
      new IntentJournal(disk, { apply: targets.apply }).run({ id: 't', ops: ops(['a', 'b'], 'm') }),
    ).rejects.toThrow();
    targets.writesBeforeCrash = 1; // 'a' succeeds, 'b' is refused again
    const second = new IntentJournal(disk, { apply: targets.apply });
    await second.recover();
    expect(second.unfinishedCount).toBe(1);
    targets.writesBeforeCrash = Infinity;
    const third = new IntentJournal(disk, { apply: targets.apply });
    expect(third.pendingOnOpen().map((i) => i.id)).toEqual(['t']);
    await third.recover();
    expect(third.unfinishedCount).toBe(0);
    expect(targets.stored.get('a')).toEqual(['m']);
    expect(targets.stored.get('b')).toEqual(['m']);
  });
});
