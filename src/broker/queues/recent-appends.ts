// The newest durable appends of a queue's levels, kept as records, so a take whose cursor is at the
// tail gets them without reading the log back. Under sustained load a consumer runs a little behind
// its producer, so no taker waits when a publish lands (no hand-off, queue-handoff.ts), and the
// next take read and decoded what the publish had just encoded: about a tenth of the server's CPU
// on the remote queue bench, and the largest share of what it allocated. NATS's filestore keeps its
// last block's messages in memory for the same reason.
//
// Bounded twice: by RECENT_APPENDS_QUEUE_BYTES per queue (oldest appends dropped first) and by a
// budget shared by all queues of a broker (a full budget keeps nothing more). Only a queue read in
// the last RECENT_APPENDS_IDLE_MS keeps anything: with nobody taking, the copies would only cost.
import { assert, type Clock, type TimerHandle } from '../../common/index.js';
import type { LogRecord, RecordInput } from '../../storage/index.js';
import { recordBytes } from './queue-record.js';

/** Largest total of record bytes one queue keeps. */
export const RECENT_APPENDS_QUEUE_BYTES = 32 * 1024 * 1024;
/** Largest total all queues of a broker keep together. */
export const RECENT_APPENDS_BROKER_BYTES = 256 * 1024 * 1024;
/** A queue not taken from for this long keeps no appends (and lets go of what it kept). */
export const RECENT_APPENDS_IDLE_MS = 1_000;

/** Bytes shared by every queue of a broker: what one keeps, others cannot. */
export class ByteBudget {
  usedBytes = 0;

  constructor(readonly maxBytes: number) {}

  tryReserve(bytes: number): boolean {
    if (this.usedBytes + bytes > this.maxBytes) return false;
    this.usedBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.usedBytes -= bytes;
    assert(this.usedBytes >= 0, 'a byte budget never releases more than it reserved');
  }
}

/** One durable append: records at offsets baseOffset.. (each record's offset set). */
interface Chunk {
  baseOffset: number;
  records: LogRecord[];
  bytes: number;
}

export class RecentAppends {
  /** Per level, contiguous appends, oldest first; chunks[level][head..] are current. */
  private readonly levels = new Map<number, { chunks: Chunk[]; head: number }>();
  private keptBytes = 0;
  private lastTakeMs = -Infinity;
  /** Looks every RECENT_APPENDS_IDLE_MS while anything is kept, and lets go once nobody takes. */
  private sweep: TimerHandle | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly budget: ByteBudget,
    private readonly maxBytes = RECENT_APPENDS_QUEUE_BYTES,
  ) {}

  get bytes(): number {
    return this.keptBytes;
  }

  /** Whether an append now should be copied for later: the queue was taken from lately. */
  wanted(): boolean {
    if (this.clock.now() - this.lastTakeMs < RECENT_APPENDS_IDLE_MS) return true;
    if (this.keptBytes > 0) this.clear();
    return false;
  }

  /**
   * Copies records[from..] as they are appended at baseOffset + from (before the append resolves:
   * the caller's bytes may be reused after). Returns the copies for keep(), or null when the
   * budget has no room for them.
   */
  copy(records: RecordInput[], from: number, baseOffset: number): Chunk | null {
    let bytes = 0;
    for (let i = from; i < records.length; i++) bytes += recordBytes(records[i]);
    if (bytes > this.maxBytes || !this.budget.tryReserve(bytes)) return null;
    const out = new Array<LogRecord>(records.length - from);
    for (let i = from; i < records.length; i++) out[i - from] = ownRecord(records[i], baseOffset + i);
    return { baseOffset: baseOffset + from, records: out, bytes };
  }

  /** Keeps a copied append once it is durable; a failed append gives its reservation back (drop). */
  keep(level: number, chunk: Chunk): void {
    let l = this.levels.get(level);
    if (l === undefined) {
      l = { chunks: [], head: 0 };
      this.levels.set(level, l);
    }
    const last = l.head < l.chunks.length ? l.chunks[l.chunks.length - 1] : null;
    if (last !== null && last.baseOffset + last.records.length !== chunk.baseOffset) this.dropLevel(l);
    l.chunks.push(chunk);
    this.keptBytes += chunk.bytes;
    if (this.sweep === null) this.armSweep();
    // Oldest first, across levels in turn: a queue keeps at most maxBytes.
    while (this.keptBytes > this.maxBytes && l.head < l.chunks.length) this.dropHead(l);
  }

  drop(chunk: Chunk): void {
    this.budget.release(chunk.bytes);
  }

  /**
   * Kept records of level from `offset` on, up to the end of the chunk holding it; null when none
   * holds it (the caller reads the log). Chunks wholly before offset are let go: a cursor does
   * not move back (a redelivery reads its one record from the log).
   */
  take(level: number, offset: number): LogRecord[] | null {
    this.lastTakeMs = this.clock.now();
    const l = this.levels.get(level);
    if (l === undefined) return null;
    while (l.head < l.chunks.length) {
      const c = l.chunks[l.head];
      if (c.baseOffset + c.records.length <= offset) {
        this.dropHead(l);
        continue;
      }
      if (c.baseOffset > offset) return null;
      return c.baseOffset === offset ? c.records : c.records.slice(offset - c.baseOffset);
    }
    return null;
  }

  /** A take ran (it may have found nothing kept): the queue is being read. */
  noteTake(): void {
    this.lastTakeMs = this.clock.now();
  }

  clear(): void {
    for (const l of this.levels.values()) this.dropLevel(l);
    this.levels.clear();
    this.sweep?.cancel();
    this.sweep = null;
  }

  private armSweep(): void {
    this.sweep = this.clock.setTimer(RECENT_APPENDS_IDLE_MS, () => {
      this.sweep = null;
      if (this.clock.now() - this.lastTakeMs >= RECENT_APPENDS_IDLE_MS) this.clear();
      else if (this.keptBytes > 0) this.armSweep();
    });
  }

  private dropHead(l: { chunks: Chunk[]; head: number }): void {
    const c = l.chunks[l.head];
    l.chunks[l.head++] = undefined as unknown as Chunk;
    this.keptBytes -= c.bytes;
    this.budget.release(c.bytes);
    if (l.head === l.chunks.length) {
      l.chunks.length = 0;
      l.head = 0;
    } else if (l.head > 64 && l.head * 2 > l.chunks.length) {
      l.chunks.splice(0, l.head);
      l.head = 0;
    }
  }

  private dropLevel(l: { chunks: Chunk[]; head: number }): void {
    while (l.head < l.chunks.length) this.dropHead(l);
  }
}

/**
 * The record as a take keeps it, with its offset. The key and value are copied (the publisher's
 * bytes may be reused once publish() returns; the log has its own copy already); header values
 * are the broker's own, as a hand-off keeps them.
 */
export function ownRecord(r: RecordInput, offset: number): LogRecord {
  return { key: copyBytes(r.key), value: copyBytes(r.value), headers: r.headers, timestampMs: r.timestampMs, offset };
}

/** Copies share 64 KiB arenas: one allocation per many messages instead of one per few. */
const ARENA_BYTES = 64 * 1024;
let arena: Buffer | null = null;
let arenaUsed = 0;

function copyBytes(b: Uint8Array | null): Uint8Array | null {
  if (b === null) return null;
  const n = b.length;
  if (n > ARENA_BYTES / 8) {
    const own = new Uint8Array(n);
    own.set(b);
    return own;
  }
  if (arena === null || arenaUsed + n > ARENA_BYTES) {
    arena = Buffer.allocUnsafeSlow(ARENA_BYTES);
    arenaUsed = 0;
  }
  // A plain view (Buffer#subarray costs a constructor call more); payloads are Uint8Arrays anyway.
  const out = new Uint8Array(arena.buffer, arena.byteOffset + arenaUsed, n);
  out.set(b);
  arenaUsed = (arenaUsed + n + 7) & ~7;
  return out;
}
