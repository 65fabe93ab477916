// Zeros written ahead of a durable file's end, and the small synchronous writes they allow.
//
// Why: on ext4 a write through O_DSYNC that extends a file must also commit the file's new size
// through the filesystem's journal (a second thread and a second flush); a write over blocks
// already written flushes only its own data. So a file written through O_DSYNC (the active segment,
// a journal) keeps zeros written ahead of its end, filled off the write path, and a small round
// that lands inside them is written synchronously on the event loop: one syscall, no trip through
// the I/O pool and no other thread to wake, which is where the latency tail of a paced queue was
// (docs/performance.md). A large round still goes through the pool, so the event loop keeps
// working while the disk writes.
//
// Readers never see the zeros: they stop at the logical end kept in memory, recovery cuts a zeroed
// tail (recovery.ts, journal-format.ts), and a file is trimmed to its logical end when sealed or
// closed (docs/storage-format.md).
import { assert } from '../common/index.js';
import { fdatasync, ftruncate, writevAll, writevAllSync } from './file-io.js';

export const PREALLOCATION_LIMITS = {
  /** The smallest fill: what a quiet file keeps ahead. */
  minFillBytes: 64 * 1024,
  /** The largest fill: about a second of writing is kept ahead, up to this. */
  maxFillBytes: 4 * 1024 * 1024,
  /** Rounds up to this size inside the filled space are written on the event loop. */
  syncWriteMaxBytes: 16 * 1024,
  /**
   * Above this write rate a file is neither filled nor written on the event loop: its rounds are
   * large, the loop has other work, and writing zeros too would double what the disk takes in.
   */
  maxRateBytesPerSecond: 8 * 1024 * 1024,
  /**
   * Rounds are written on the event loop only while the loop's own work (everything but these
   * writes) took at most this share of its time: a busy loop has better things to do than wait
   * for the disk, and the I/O pool lets it.
   */
  maxLoopBusyShare: 0.5,
  /**
   * Nor while these writes themselves took more than this share of the loop's time: many quiet
   * files would otherwise write one after another on the loop, where the pool overlapped them.
   */
  maxSyncWriteShare: 0.5,
  /** The write rate and the loop's busy share are measured over windows of this length. */
  rateWindowMs: 250,
} as const;

/** A zero-filled region of this size is what a second of writes at this rate needs. */
function fillBytesFor(bytesPerSecond: number): number {
  const { minFillBytes, maxFillBytes } = PREALLOCATION_LIMITS;
  return Math.min(maxFillBytes, Math.max(minFillBytes, Math.ceil(bytesPerSecond)));
}

/** The source of every fill: zeros are only ever read from it. */
const ZEROS = Buffer.alloc(PREALLOCATION_LIMITS.maxFillBytes);

/**
 * Whether the loop may write rounds itself, from one window of its time (all in ms): its work other
 * than these writes took at most maxLoopBusyShare of the time they left, and the writes at most
 * maxSyncWriteShare of the window.
 */
export function loopHasRoom(activeMs: number, syncWriteMs: number, elapsedMs: number): boolean {
  if (elapsedMs <= 0) return true;
  const otherWorkMs = Math.max(0, activeMs - syncWriteMs);
  const leftMs = Math.max(1e-3, elapsedMs - syncWriteMs);
  return (
    otherWorkMs / leftMs <= PREALLOCATION_LIMITS.maxLoopBusyShare &&
    syncWriteMs / elapsedMs <= PREALLOCATION_LIMITS.maxSyncWriteShare
  );
}

/** The event loop's last whole window, as loopHasRoom judges it. One per process: every file shares the loop. */
class LoopWindow {
  #windowStartMs = performance.now();
  #utilization = performance.eventLoopUtilization();
  #syncWriteMs = 0;
  #hasRoom = true;

  noteSyncWrite(ms: number): void {
    this.#syncWriteMs += ms;
  }

  /** Rolls the window over when it has passed; cheap otherwise. */
  hasRoom(): boolean {
    const nowMs = performance.now();
    const elapsedMs = nowMs - this.#windowStartMs;
    if (elapsedMs >= PREALLOCATION_LIMITS.rateWindowMs) {
      const now = performance.eventLoopUtilization();
      const window = performance.eventLoopUtilization(now, this.#utilization);
      this.#hasRoom = loopHasRoom(window.active, this.#syncWriteMs, elapsedMs);
      this.#utilization = now;
      this.#windowStartMs = nowMs;
      this.#syncWriteMs = 0;
    }
    return this.#hasRoom;
  }
}

const loopWindow = new LoopWindow();

/** A part of a window shorter than this is measured as this long (no rate from one write alone). */
const MIN_PARTIAL_WINDOW_MS = 20;

/** Bytes written per second: the last whole window's, raised at once by a faster partial window. */
class WriteRate {
  #windowStartMs: number;
  #windowBytes = 0;
  bytesPerSecond = 0;

  constructor(private readonly nowMs: () => number) {
    this.#windowStartMs = nowMs();
  }

  note(bytes: number): void {
    this.#windowBytes += bytes;
    const nowMs = this.nowMs();
    const elapsedMs = nowMs - this.#windowStartMs;
    if (elapsedMs < 0) {
      // A clock that went back (only an injected one can): start a new window from here.
      this.#windowStartMs = nowMs;
      this.#windowBytes = bytes;
      return;
    }
    if (elapsedMs < PREALLOCATION_LIMITS.rateWindowMs) {
      // A burst after a quiet spell counts at once, not a window later.
      const partial = (this.#windowBytes * 1000) / Math.max(elapsedMs, MIN_PARTIAL_WINDOW_MS);
      if (partial > this.bytesPerSecond) this.bytesPerSecond = partial;
      return;
    }
    this.bytesPerSecond = (this.#windowBytes * 1000) / elapsedMs;
    this.#windowStartMs = nowMs;
    this.#windowBytes = 0;
  }
}

/** What a Preallocation did (tests and diagnostics). */
export interface PreallocationCounts {
  /** Rounds written on the event loop. */
  syncRounds: number;
  /** Rounds written through the I/O pool. */
  poolRounds: number;
  /** Fills of zeros started. */
  fills: number;
  /** Fills that failed (after one, the file is written as before, extending). */
  fillFailures: number;
}

export class Preallocation {
  readonly counts: PreallocationCounts = { syncRounds: 0, poolRounds: 0, fills: 0, fillFailures: 0 };
  /** Bytes [0, filledEnd) of the file hold data or durable zeros: a write there extends nothing. */
  #filledEnd: number;
  /** End of everything written or being written as data. */
  #dataEnd: number;
  /** The fill in flight (zeros from #fillStart on), or null. */
  #fill: Promise<void> | null = null;
  #fillStart = Number.POSITIVE_INFINITY;
  readonly #rate: WriteRate;
  /** A fill failed (a full disk, say): this file is written as before, extending. */
  #stopped = false;
  /** Whether zeros may lie past the data: trim() has work to do. */
  #extended = false;

  /**
   * fd: written through O_DSYNC. endBytes: the file's logical end, which is also its size now.
   * capBytes: no zeros are written past it (a segment's roll size). nowMs: the clock the write
   * rate is measured with (monotonic); loopHasRoom: whether the event loop may write rounds itself.
   */
  constructor(
    private readonly fd: number,
    endBytes: number,
    private readonly capBytes: number,
    nowMs: () => number = () => performance.now(),
    private readonly loopHasRoom: () => boolean = () => loopWindow.hasRoom(),
  ) {
    assert(Number.isSafeInteger(endBytes) && endBytes >= 0, 'a file ends at a byte position');
    this.#filledEnd = this.#dataEnd = endBytes;
    this.#rate = new WriteRate(nowMs);
  }

  /** Zero bytes written ahead of the data (tests). */
  get aheadBytes(): number {
    return Math.max(0, this.#filledEnd - this.#dataEnd);
  }

  /**
   * Writes buffers (totalBytes in all) at position, the file's logical end. Returns once written,
   * and, through the O_DSYNC fd, durable.
   */
  async write(buffers: Buffer[], position: number, totalBytes: number): Promise<void> {
    assert(position === this.#dataEnd, 'rounds are written contiguously, one at a time');
    const end = position + totalBytes;
    // Zeros being written must never land on data: a round reaching them waits for them first.
    if (this.#fill !== null && end > this.#fillStart) await this.#fill;
    // Not while a fill runs: a write then may wait for the fill's commit of the new file size.
    const loopHasRoom = this.loopHasRoom(); // asked on every round, so its window rolls on time
    const sync =
      loopHasRoom &&
      this.#fill === null &&
      totalBytes <= PREALLOCATION_LIMITS.syncWriteMaxBytes &&
      end <= this.#filledEnd &&
      this.#isQuiet();
    if (sync) {
      this.counts.syncRounds++;
      const startMs = performance.now();
      writevAllSync(this.fd, buffers, position);
      loopWindow.noteSyncWrite(performance.now() - startMs);
      // Settle as I/O does, in a later turn of the loop: a caller that appends again as soon as
      // its append settles would otherwise run on microtasks alone and starve timers and sockets.
      await new Promise<void>((resolve) => setImmediate(resolve));
    } else {
      this.counts.poolRounds++;
      await writevAll(this.fd, buffers, position);
    }
    this.#dataEnd = end;
    if (end > this.#filledEnd) this.#filledEnd = end;
    this.#rate.note(totalBytes);
    this.#fillIfLow();
  }

  #isQuiet(): boolean {
    return this.#rate.bytesPerSecond <= PREALLOCATION_LIMITS.maxRateBytesPerSecond;
  }

  #fillIfLow(): void {
    if (this.#stopped || this.#fill !== null || !this.#isQuiet()) return;
    const want = fillBytesFor(this.#rate.bytesPerSecond);
    if (this.#filledEnd - this.#dataEnd >= want / 2) return;
    const start = Math.max(this.#filledEnd, this.#dataEnd);
    const end = Math.min(this.capBytes, start + want);
    if (end <= start) return;
    this.#fillStart = start;
    this.#extended = true;
    this.counts.fills++;
    this.#fill = writevAll(this.fd, [ZEROS.subarray(0, end - start)], start)
      .then(
        () => {
          this.#filledEnd = Math.max(this.#filledEnd, end);
        },
        () => {
          // Nothing depends on the zeros: later rounds extend the file as they did before.
          this.counts.fillFailures++;
          this.#stopped = true;
        },
      )
      .finally(() => {
        this.#fill = null;
        this.#fillStart = Number.POSITIVE_INFINITY;
      });
  }

  /**
   * Waits for the fill in flight and starts no other: before the fd closes, so zeros never land in
   * whatever file the fd number goes to next.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    while (this.#fill !== null) await this.#fill;
  }

  /** Cuts the zeros past the data (a segment sealed, a file closed): the file ends at its data. */
  async trim(): Promise<void> {
    await this.stop();
    if (!this.#extended) return;
    await ftruncate(this.fd, this.#dataEnd);
    this.#filledEnd = this.#dataEnd;
    await fdatasync(this.fd);
    this.#extended = false;
  }
}
