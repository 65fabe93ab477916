// Durability and group commit: under fsync 'always' an append resolves only after an fsync that
// covers it (a write through an O_DSYNC fd), appends that arrive during a write+fsync share the next one, and the opt-in policies
// ('interval', 'never') behave as documented.
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DiskJournal, DiskLog, resolveJournalOptions, resolveLogOptions } from '../../src/storage/index.js';
import { dec, enc, expectWharfError, rec, rejectionOf, removeDir, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

function mkdir(): string {
  const dir = tempDir('wharf-gc-');
  dirs.push(dir);
  return dir;
}

/** A gate the fsync hook waits on, so a test holds an fsync "in progress". */
function syncGate() {
  let open = true;
  let waiters: Array<() => void> = [];
  let entered = 0;
  return {
    hook: async () => {
      entered++;
      if (!open) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    close: () => {
      open = false;
    },
    release: () => {
      open = true;
      waiters.splice(0).forEach((w) => w());
    },
    /** Lets exactly the fsyncs waiting now through; later ones wait again. */
    releaseWaiting: () => {
      const now = waiters;
      waiters = [];
      now.forEach((w) => w());
    },
    get entered() {
      return entered;
    },
  };
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

function track<T>(p: Promise<T>): { done: boolean; promise: Promise<T> } {
  const t = { done: false, promise: p };
  void p.then(() => (t.done = true));
  return t;
}

describe('group commit under fsync always', () => {
  it('concurrent appends share far fewer fsyncs than appends', async () => {
    const log = await DiskLog.open(mkdir(), resolveLogOptions({}));
    const appenders = 16;
    const appendsEach = 25;
    await Promise.all(
      Array.from({ length: appenders }, async (_, a) => {
        for (let i = 0; i < appendsEach; i++) await log.append([rec(`${a}-${i}`)]);
      }),
    );
    const appends = appenders * appendsEach;
    expect(log.endOffset).toBe(appends);
    expect(log.fsyncCount).toBeLessThanOrEqual(appends / 8);
    expect((await log.read(0, { maxBytes: 1 << 20 })).length).toBe(appends);
    await log.close();
  });

  it('assigns offsets synchronously, in call order', async () => {
    const log = await DiskLog.open(mkdir(), resolveLogOptions({}));
    const a = log.append([rec('a'), rec('b')]);
    expect(log.endOffset).toBe(2);
    const b = log.append([rec('c')]);
    expect(log.endOffset).toBe(3);
    expect(await Promise.all([a, b])).toEqual([
      { baseOffset: 0, lastOffset: 1 },
      { baseOffset: 2, lastOffset: 2 },
    ]);
    await log.close();
  });

  it('resolves an append only after an fsync that started after its write', async () => {
    const gate = syncGate();
    const log = await DiskLog.open(mkdir(), resolveLogOptions({}), { beforeSync: gate.hook });
    gate.close();
    const first = track(log.append([rec('first')]));
    await tick();
    expect(gate.entered).toBe(1); // written, fsync in progress
    expect(first.done).toBe(false);
    expect(await log.read(0, { maxBytes: 1 << 20 })).toEqual([]); // not durable: not visible

    // Two appends arrive while that fsync runs: they wait for the next round.
    const second = track(log.append([rec('second')]));
    const third = track(log.append([rec('third')]));
    gate.releaseWaiting();
    await first.promise;
    await tick();
    expect(second.done || third.done).toBe(false);
    expect(gate.entered).toBe(2); // one round, one fsync, for both
    expect((await log.read(0, { maxBytes: 1 << 20 })).map((r) => dec(r.value))).toEqual(['first']);
    gate.release();
    await Promise.all([second.promise, third.promise]);
    expect(log.fsyncCount).toBe(2);
    expect((await log.read(0, { maxBytes: 1 << 20 })).map((r) => dec(r.value))).toEqual(['first', 'second', 'third']);
    await log.close();
  });

  it('a failed write or fsync rejects the waiting appends and takes the log offline', async () => {
    let fail = false;
    const log = await DiskLog.open(mkdir(), resolveLogOptions({}), {
      beforeSync: () => {
        if (fail) throw new Error('EIO: simulated disk failure');
      },
    });
    await log.append([rec('ok')]);
    fail = true;
    const err = await rejectionOf(log.append([rec('lost')]));
    expect(String((err as Error).message)).toContain('EIO');
    expectWharfError(await rejectionOf(log.append([rec('after')])), 'UNAVAILABLE');
    expect((await log.read(0, { maxBytes: 1 << 20 })).map((r) => dec(r.value))).toEqual(['ok']);
    await log.close();
  });
});

describe('opt-in fsync policies', () => {
  it("'never' resolves appends without fsync; flush() forces one", async () => {
    const log = await DiskLog.open(mkdir(), resolveLogOptions({ fsync: 'never' }));
    for (let i = 0; i < 20; i++) await log.append([rec(`m${i}`)]);
    expect(log.fsyncCount).toBe(0);
    expect((await log.read(0, { maxBytes: 1 << 20 })).length).toBe(20); // visible once written
    await log.flush();
    expect(log.fsyncCount).toBe(1);
    await log.close();
  });

  it("'interval' fsyncs written data within fsyncIntervalMs", async () => {
    const log = await DiskLog.open(mkdir(), resolveLogOptions({ fsync: 'interval', fsyncIntervalMs: 300 }));
    await Promise.all(Array.from({ length: 10 }, (_, i) => log.append([rec(`m${i}`)])));
    expect(log.fsyncCount).toBe(0); // resolved after the write, before any fsync
    const deadline = Date.now() + 5000;
    while (log.fsyncCount === 0 && Date.now() < deadline) await tick(10);
    expect(log.fsyncCount).toBe(1);
    await tick(700);
    expect(log.fsyncCount).toBe(1); // nothing new written: no more fsyncs
    await log.close();
  });
});

/** The open-file flags of this process's fds on path (Linux /proc), in octal as fdinfo shows them. */
function fdFlagsOn(path: string): number[] {
  const out: number[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (target !== path) continue;
    const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (m !== null) out.push(parseInt(m[1], 8));
  }
  return out;
}

/** Every fd on dir's log segment and journal has O_DSYNC (or, with dsync false, none has). */
function expectDsync(dir: string, dsync: boolean): void {
  const segment = join(
    dir,
    'log',
    fs.readdirSync(join(dir, 'log')).find((f) => f.endsWith('.log'))!,
  );
  for (const path of [segment, join(dir, 'journal')]) {
    const flags = fdFlagsOn(path);
    expect(flags.length).toBeGreaterThan(0);
    for (const f of flags) expect(f & fs.constants.O_DSYNC).toBe(dsync ? fs.constants.O_DSYNC : 0);
  }
}

describe.runIf(fs.existsSync('/proc/self/fdinfo'))('durable writes', () => {
  it("fsync 'always' writes logs and journals through O_DSYNC: one call per round, no separate fdatasync", async () => {
    const dir = mkdir();
    const log = await DiskLog.open(join(dir, 'log'), resolveLogOptions({ fsync: 'always' }));
    await log.append([rec('a')]);
    const journal = await DiskJournal.open(join(dir, 'journal'), resolveJournalOptions({ fsync: 'always' }));
    await journal.append(enc('x'));
    expectDsync(dir, true);
    expect([log.fsyncCount, journal.fsyncCount]).toEqual([1, 1]); // durable rounds, counted as fsyncs
    await log.close();
    await journal.close();
  });

  it("fsync 'always' syncs an opened log's and journal's existing bytes once: later rounds sync only their own", async () => {
    const dir = mkdir();
    // Bytes written under 'never' (or left by a crash before their fsync).
    const before = await DiskLog.open(join(dir, 'log'), resolveLogOptions({ fsync: 'never' }));
    await before.append([rec('unsynced')]);
    await before.close();
    const j0 = await DiskJournal.open(join(dir, 'journal'), resolveJournalOptions({ fsync: 'never' }));
    await j0.append(enc('unsynced'));
    await j0.close();
    const spy = vi.spyOn(fs, 'fdatasync');
    try {
      const log = await DiskLog.open(join(dir, 'log'), resolveLogOptions({ fsync: 'always' }));
      const afterLog = spy.mock.calls.length;
      const journal = await DiskJournal.open(join(dir, 'journal'), resolveJournalOptions({ fsync: 'always' }));
      expect([afterLog, spy.mock.calls.length - afterLog]).toEqual([1, 1]);
      await log.close();
      await journal.close();
    } finally {
      spy.mockRestore();
    }
  });

  it("fsync 'never' and 'interval' write without O_DSYNC", async () => {
    const dir = mkdir();
    const log = await DiskLog.open(join(dir, 'log'), resolveLogOptions({ fsync: 'never' }));
    await log.append([rec('a')]);
    const journal = await DiskJournal.open(join(dir, 'journal'), resolveJournalOptions({ fsync: 'interval' }));
    await journal.append(enc('x'));
    expectDsync(dir, false);
    await log.close();
    await journal.close();
  });
});
