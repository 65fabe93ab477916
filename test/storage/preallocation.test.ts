// Zeros written ahead of a durable file's data, and the small rounds they let through on the event
// loop: the file holds exactly the data written, zeros never land on it, a fast file (or a busy
// loop) gets no synchronous rounds, trim() and stop() leave nothing behind, no zeros pass the cap.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DSYNC_FLAG } from '../../src/storage/file-io.js';
import {
  loopHasRoom,
  PREALLOCATION_LIMITS,
  Preallocation,
  type PreallocationCounts,
} from '../../src/storage/preallocation.js';
import { removeDir, tempDir } from './helpers.js';

/**
 * Fills are writes of nothing but zeros (data here never holds a zero byte). While `hold` is set
 * a fill waits for it before it reaches the file, so a test can keep one in flight as long as it
 * needs; while `fail` is set a fill fails. Every other write goes straight to the real file-io.
 */
const fillGate = vi.hoisted(() => ({ hold: null as Promise<void> | null, held: 0, fail: false }));
vi.mock('../../src/storage/file-io.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/storage/file-io.js')>();
  return {
    ...actual,
    writevAll: async (fd: number, buffers: Buffer[], position: number): Promise<void> => {
      if (buffers.every((b) => b.every((byte) => byte === 0))) {
        if (fillGate.fail) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        if (fillGate.hold !== null) {
          fillGate.held++;
          await fillGate.hold;
        }
      }
      return actual.writevAll(fd, buffers, position);
    },
  };
});

/** Holds every fill started from now on until the returned function is called. */
function holdFills(): () => void {
  let release = (): void => undefined;
  fillGate.hold = new Promise<void>((resolve) => {
    release = () => {
      fillGate.hold = null;
      resolve();
    };
  });
  fillGate.held = 0;
  releaseFills = release;
  return release;
}
let releaseFills = (): void => undefined;

const {
  syncWriteMaxBytes,
  minFillBytes,
  maxFillBytes,
  maxRateBytesPerSecond,
  maxLoopBusyShare,
  maxSyncWriteShare,
  rateWindowMs,
} = PREALLOCATION_LIMITS;
/** The most bytes one whole rate window may take with the file still counted as quiet. */
const windowLimitBytes = (maxRateBytesPerSecond * rateWindowMs) / 1000;

const dirs: string[] = [];
const subjects: Subject[] = [];
afterEach(async () => {
  releaseFills();
  fillGate.fail = false;
  for (const s of subjects.splice(0)) await s.close();
  dirs.splice(0).forEach(removeDir);
});

/** Random bytes without a zero among them, so zeros landing on data always show. */
function dataBytes(n: number): Buffer {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) if (b[i] === 0) b[i] = 1 + (i % 255);
  return b;
}

/** Index of the first byte where a and b differ (a length mismatch counts), or -1. */
function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Splits a round's bytes into up to `pieces` buffers, as a writev of several batches sees them. */
function split(bytes: Buffer, pieces: number): Buffer[] {
  const buffers: Buffer[] = [];
  let at = 0;
  for (let i = 1; i < pieces && at < bytes.length; i++) {
    const cut = at + Math.ceil((bytes.length - at) / (pieces - i + 1));
    buffers.push(bytes.subarray(at, cut));
    at = cut;
  }
  if (at < bytes.length || buffers.length === 0) buffers.push(bytes.subarray(at));
  return buffers;
}

/**
 * A file opened as the durable writers open it, a Preallocation over it with a fake clock and a
 * fake loop busyness, and everything written to it.
 */
class Subject {
  readonly path: string;
  readonly fd: number;
  readonly prealloc: Preallocation;
  /** The clock the write rate is measured with. */
  nowMs = 0;
  /** How far write() moves the clock before each round: by default a window, so a file is quiet. */
  stepMs: number = rateWindowMs;
  /** Whether the event loop may write rounds itself, as the Preallocation sees it. */
  loopHasRoom = true;
  /** The data's end: where the next round goes. */
  end: number;
  readonly #written: Buffer[] = [];
  #closed = false;

  constructor(capBytes: number, prefixBytes = 0) {
    const dir = tempDir('wharf-prealloc-');
    dirs.push(dir);
    this.path = join(dir, 'file');
    this.fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_CREAT | (DSYNC_FLAG ?? 0));
    const prefix = dataBytes(prefixBytes);
    if (prefixBytes > 0) fs.writeSync(this.fd, prefix, 0, prefixBytes, 0);
    this.#written.push(prefix);
    this.end = prefixBytes;
    this.prealloc = new Preallocation(
      this.fd,
      prefixBytes,
      capBytes,
      () => this.nowMs,
      () => this.loopHasRoom,
    );
    subjects.push(this);
  }

  get counts(): PreallocationCounts {
    return { ...this.prealloc.counts };
  }

  /** Starts a round of sizeBytes at the data's end (the clock moved first); returns it unawaited. */
  start(sizeBytes: number, pieces = 1): { position: number; bytes: Buffer; done: Promise<void> } {
    this.nowMs += this.stepMs;
    const position = this.end;
    const bytes = dataBytes(sizeBytes);
    this.#written.push(bytes);
    this.end += sizeBytes;
    return { position, bytes, done: this.prealloc.write(split(bytes, pieces), position, sizeBytes) };
  }

  write(sizeBytes: number, pieces = 1): Promise<void> {
    return this.start(sizeBytes, pieces).done;
  }

  /** Bytes at [position, position + length) as the file holds them right now. */
  readNow(position: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(this.fd, buf, 0, length, position);
    return buf.subarray(0, n);
  }

  get fileBytes(): number {
    return fs.fstatSync(this.fd).size;
  }

  /** The file starts with everything written, byte for byte, and holds only zeros after it. */
  expectDataThenZeros(): void {
    const file = fs.readFileSync(this.path);
    expect(file.length).toBeGreaterThanOrEqual(this.end);
    expect(firstDifference(file.subarray(0, this.end), Buffer.concat(this.#written))).toBe(-1);
    expect(file.subarray(this.end).findIndex((b) => b !== 0)).toBe(-1);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.prealloc.stop();
    fs.closeSync(this.fd);
  }
}

const NO_CAP = Number.MAX_SAFE_INTEGER;
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Preallocation', () => {
  it('keeps every round written contiguously, byte for byte, with only zeros past the data', async () => {
    const roundArb = fc.record({
      sizeBytes: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 1, max: syncWriteMaxBytes }) },
        { weight: 1, arbitrary: fc.constantFrom(syncWriteMaxBytes, syncWriteMaxBytes + 1) },
        { weight: 2, arbitrary: fc.integer({ min: syncWriteMaxBytes + 1, max: 320 * 1024 }) },
      ),
      pieces: fc.integer({ min: 1, max: 3 }),
      stepMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 * rateWindowMs })),
    });
    const totals = { syncRounds: 0, poolRounds: 0, fills: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 8192 }),
        fc.oneof(fc.constant(NO_CAP), fc.integer({ min: 0, max: 4 * 1024 * 1024 })),
        fc.array(roundArb, { minLength: 10, maxLength: 60 }),
        async (prefixBytes, capBytes, rounds) => {
          const s = new Subject(capBytes, prefixBytes);
          try {
            for (const r of rounds) {
              s.stepMs = r.stepMs;
              await s.write(r.sizeBytes, r.pieces);
              // Zeros count as ahead only once they are on the file.
              expect(s.end + s.prealloc.aheadBytes).toBeLessThanOrEqual(s.fileBytes);
            }
            // Every fill has landed once stop() returns: any zeros written over data show now.
            await s.prealloc.stop();
            s.expectDataThenZeros();
            expect(s.fileBytes).toBeLessThanOrEqual(Math.max(capBytes, s.end));
            for (const k of ['syncRounds', 'poolRounds', 'fills'] as const) totals[k] += s.prealloc.counts[k];
          } finally {
            await s.close();
          }
        },
      ),
      { numRuns: 40 },
    );
    // The runs did take every path: rounds inside zeros, rounds through the pool, fills.
    expect(totals.syncRounds).toBeGreaterThan(0);
    expect(totals.poolRounds).toBeGreaterThan(0);
    expect(totals.fills).toBeGreaterThan(1);
  }, 120_000);

  it('holds a round that reaches zeros still being written until they land, so they never cover it', async () => {
    const release = holdFills();
    const s = new Subject(NO_CAP);
    await s.write(1000); // extends the file; the fill started behind it is held before the file
    expect(fillGate.held).toBe(1);
    let written = false;
    const round = s.start(syncWriteMaxBytes + 4000, 2); // into the held zeros' range
    void round.done.then(() => (written = true));
    await settle(50);
    expect(written).toBe(false);
    expect(s.readNow(round.position, round.bytes.length).length).toBe(0);
    release();
    await round.done;
    await s.prealloc.stop();
    expect(s.fileBytes).toBe(1000 + minFillBytes); // the zeros landed first, the round over them
    s.expectDataThenZeros();
  });

  it('fills zeros ahead after the first rounds and writes a small round inside them synchronously, a large one through the pool', async () => {
    const s = new Subject(NO_CAP);
    await s.write(1000);
    // The first round extends the file: it goes through the pool, and a fill starts behind it.
    expect(s.counts).toMatchObject({ syncRounds: 0, poolRounds: 1, fills: 1 });
    expect(s.end + s.prealloc.aheadBytes).toBeLessThanOrEqual(s.fileBytes); // counted once written
    await s.write(1000);
    await s.write(1000);
    expect(s.prealloc.aheadBytes).toBeGreaterThan(0);
    expect(s.fileBytes).toBeGreaterThan(s.end);
    expect(s.fileBytes).toBe(s.end + s.prealloc.aheadBytes);
    expect(s.prealloc.aheadBytes).toBeGreaterThanOrEqual(syncWriteMaxBytes + (syncWriteMaxBytes + 1));

    // A round of syncWriteMaxBytes inside the zeros: on the file before write() even returns.
    const before = s.counts;
    const round = s.start(syncWriteMaxBytes);
    expect(firstDifference(s.readNow(round.position, syncWriteMaxBytes), round.bytes)).toBe(-1);
    await round.done;
    expect(s.counts).toEqual({ ...before, syncRounds: before.syncRounds + 1 });

    // One byte more still lands inside the zeros, but goes through the pool.
    expect(s.prealloc.aheadBytes).toBeGreaterThanOrEqual(syncWriteMaxBytes + 1);
    await s.write(syncWriteMaxBytes + 1, 2);
    expect(s.counts.poolRounds).toBe(before.poolRounds + 1);
    expect(s.counts.syncRounds).toBe(before.syncRounds + 1);

    await s.prealloc.stop();
    s.expectDataThenZeros();
  });

  it('keeps a quiet file topped up: as the zeros run low new fills follow the data, and most rounds are synchronous', async () => {
    const s = new Subject(NO_CAP);
    for (let i = 0; i < 40; i++) await s.write(4000);
    expect(s.end).toBeGreaterThan(2 * minFillBytes);
    expect(s.counts.fills).toBeGreaterThan(1);
    expect(s.counts.syncRounds).toBeGreaterThan(s.counts.poolRounds);
    await s.prealloc.stop();
    expect(s.prealloc.aheadBytes).toBeGreaterThan(0);
    s.expectDataThenZeros();
  });

  it('writes no round synchronously while a fill is in flight, not even one inside the zeros already there', async () => {
    const s = new Subject(NO_CAP);
    await s.write(1000); // extends the file; the first fill starts
    await s.write(1000); // waits for it, and lands inside it
    const release = holdFills();
    while (s.counts.fills < 2) await s.write(3000); // uses the zeros up until a second fill starts
    expect(fillGate.held).toBe(1);
    const ahead = s.prealloc.aheadBytes;
    expect(ahead).toBeGreaterThanOrEqual(1000);
    const before = s.counts;
    await s.write(1000); // inside zeros already on the file, short of the held fill
    expect(s.counts).toEqual({ ...before, poolRounds: before.poolRounds + 1 });
    release();
    // Once the fill has landed, rounds inside the zeros are synchronous again.
    await vi.waitFor(() => expect(s.prealloc.aheadBytes).toBeGreaterThan(ahead), { timeout: 10_000 });
    await s.write(1000);
    expect(s.counts.syncRounds).toBe(before.syncRounds + 1);
    await s.prealloc.stop();
    s.expectDataThenZeros();
  });

  it('writes no round synchronously while the event loop is busy with other work, and fills all the same', async () => {
    const s = new Subject(NO_CAP);
    s.loopHasRoom = false;
    await s.write(1000);
    for (let i = 0; i < 10; i++) await s.write(1000);
    expect(s.prealloc.aheadBytes).toBeGreaterThan(0);
    expect(s.counts).toMatchObject({ syncRounds: 0, poolRounds: 11, fills: 1 });
    s.loopHasRoom = true;
    await s.write(1000);
    expect(s.counts).toMatchObject({ syncRounds: 1, poolRounds: 11 });
    await s.prealloc.stop();
    s.expectDataThenZeros();
  });

  it('trim() cuts the zeros ahead: the file ends exactly at its data, which is intact', async () => {
    const s = new Subject(NO_CAP, 300);
    for (let i = 0; i < 5; i++) await s.write(700 + i, 2);
    expect(s.fileBytes).toBeGreaterThan(s.end);
    await s.prealloc.trim();
    expect(s.fileBytes).toBe(s.end);
    expect(s.prealloc.aheadBytes).toBe(0);
    s.expectDataThenZeros();
  });

  it('trim() waits for a fill in flight and fills no more: the file stays at its data, later rounds extend it', async () => {
    const s = new Subject(NO_CAP);
    await s.write(1000); // extends the file and starts a fill, which trim() finds in flight
    expect(s.counts.fills).toBe(1);
    await s.prealloc.trim();
    expect(s.fileBytes).toBe(s.end);
    await settle(50);
    expect(s.fileBytes).toBe(s.end);
    expect(s.prealloc.aheadBytes).toBe(0);
    // A trimmed file (sealed, closing) gets no zeros again: rounds after it end the file.
    for (let i = 0; i < 5; i++) {
      await s.write(1000);
      expect(s.fileBytes).toBe(s.end);
    }
    expect(s.counts.fills).toBe(1);
    s.expectDataThenZeros();
  });

  it('stop() waits for the fill in flight and starts no more: later rounds extend the file', async () => {
    const s = new Subject(NO_CAP);
    await s.write(1000);
    expect(s.counts.fills).toBe(1);
    await s.prealloc.stop();
    // The fill has landed and is counted as ahead.
    expect(s.prealloc.aheadBytes).toBe(minFillBytes);
    expect(s.fileBytes).toBe(s.end + minFillBytes);

    while (s.end < 1000 + minFillBytes + 20_000) await s.write(6000);
    expect(s.counts.fills).toBe(1);
    expect(s.prealloc.aheadBytes).toBe(0);
    expect(s.fileBytes).toBe(s.end);
    s.expectDataThenZeros();
  });

  it('neither fills nor writes synchronously while the file is written faster than maxRateBytesPerSecond, and fills again once it slows', async () => {
    const s = new Subject(NO_CAP);
    s.stepMs = 0;
    // A first window at half the limit: the fill after it is a second of that, as large as fills get.
    s.nowMs = rateWindowMs;
    await s.write(windowLimitBytes / 2);
    expect(s.counts.fills).toBe(1);
    // The next window takes the limit's worth at once: a burst counts at once.
    await s.write(windowLimitBytes);
    expect(s.fileBytes).toBe(windowLimitBytes / 2 + maxFillBytes);
    const fast = s.counts;
    expect(fast.fills).toBe(1);

    // A small round inside the zeros, no fill in flight: through the pool.
    expect(s.prealloc.aheadBytes).toBeGreaterThan(1000 + 20_000);
    await s.write(1000);
    expect(s.counts).toEqual({ ...fast, poolRounds: fast.poolRounds + 1 });
    // With the zeros nearly used up, where a quiet file would fill, no fill starts.
    await s.write(s.prealloc.aheadBytes - 20_000);
    expect(s.prealloc.aheadBytes).toBe(20_000);
    expect(s.prealloc.aheadBytes).toBeLessThan(minFillBytes / 2);
    for (let i = 0; i < 3; i++) await s.write(1000);
    // The window closes having taken more than the limit: still fast, measured whole.
    s.nowMs += rateWindowMs;
    await s.write(1000);
    expect(s.counts).toEqual({ ...fast, poolRounds: fast.poolRounds + 6 });
    expect(s.fileBytes).toBe(s.end + s.prealloc.aheadBytes);

    // A window with a single small round: the rate has fallen, and a fill starts again...
    s.nowMs += rateWindowMs;
    await s.write(1000);
    expect(s.counts.fills).toBe(fast.fills + 1);
    // ...and a small round that waits for it is written synchronously once it has landed.
    const round = s.prealloc.aheadBytes + 1000;
    expect(round).toBeLessThanOrEqual(syncWriteMaxBytes);
    await s.write(round);
    expect(s.counts.syncRounds).toBe(fast.syncRounds + 1);

    await s.prealloc.stop();
    s.expectDataThenZeros();
  });

  it('writes no zeros past capBytes: the file never exceeds the cap or the data, whichever is larger', async () => {
    const capBytes = 100_000;
    const s = new Subject(capBytes);
    let sawCap = false;
    while (s.end < capBytes + 2 * minFillBytes) {
      await s.write(3000);
      expect(s.fileBytes).toBeLessThanOrEqual(Math.max(capBytes, s.end));
      if (s.end < capBytes && s.fileBytes === capBytes) sawCap = true;
    }
    // The zeros did reach the cap (a fill without it would have gone further) and stopped there.
    expect(sawCap).toBe(true);
    expect(s.counts.fills).toBeGreaterThan(1);
    await s.prealloc.stop();
    expect(s.fileBytes).toBe(s.end);
    s.expectDataThenZeros();
  });

  it('fills nothing in a file already past its cap', async () => {
    const s = new Subject(4096, 5000);
    for (let i = 0; i < 10; i++) {
      await s.write(500);
      expect(s.fileBytes).toBe(s.end);
    }
    expect(s.counts).toMatchObject({ syncRounds: 0, poolRounds: 10, fills: 0 });
    await s.prealloc.trim();
    expect(s.fileBytes).toBe(s.end);
    s.expectDataThenZeros();
  });

  it('after a fill fails, starts no other and writes rounds as before, extending the file', async () => {
    fillGate.fail = true;
    const s = new Subject(NO_CAP);
    await s.write(1000);
    await s.write(1000);
    expect(s.counts).toMatchObject({ fills: 1, fillFailures: 1 });
    fillGate.fail = false;
    for (let i = 0; i < 5; i++) {
      await s.write(1000);
      expect(s.fileBytes).toBe(s.end);
    }
    expect(s.counts).toMatchObject({ syncRounds: 0, poolRounds: 7, fills: 1, fillFailures: 1 });
    s.expectDataThenZeros();
  });
});

describe('loopHasRoom: whether the event loop may write rounds itself', () => {
  const windowMs = 250;

  it('says yes while the loop is mostly idle, counting its other work against the time the writes left', () => {
    expect(loopHasRoom(0, 0, windowMs)).toBe(true);
    // 60 ms of writes leave 190 ms; 95 ms of other work is exactly half of it.
    expect(loopHasRoom(60 + 95, 60, windowMs)).toBe(true);
    expect(loopHasRoom(60 + 96, 60, windowMs)).toBe(false);
  });

  it('says no once the writes themselves fill more than their share of the window, however idle the rest', () => {
    expect(loopHasRoom(windowMs * maxSyncWriteShare, windowMs * maxSyncWriteShare, windowMs)).toBe(true);
    expect(loopHasRoom(windowMs * maxSyncWriteShare + 1, windowMs * maxSyncWriteShare + 1, windowMs)).toBe(false);
  });

  it('says no for a loop busy with other work at the limit plus a little', () => {
    expect(loopHasRoom(windowMs * maxLoopBusyShare + 1, 0, windowMs)).toBe(false);
  });
});
