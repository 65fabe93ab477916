// The newest durable appends of a queue's levels, kept as records, so a take whose cursor is at the
// tail gets them without reading the log back. Under sustained load a consumer runs a little behind
// its producer, so no taker waits when a publish lands (no hand-off, queue-handoff.ts), and the
// next take read and decoded what the publish had just encoded: about a tenth of the server's CPU
// on the remote queue bench, and the largest share of what it allocated. NATS's filestore keeps its
// last block's messages in memory for the same reason.
//
// Bounded twice: by RECENT_APPENDS_QUEUE_BYTES per queue (the oldest appends, whatever their level,
// dropped first; copies of appends still on their way count) and by a budget shared by all queues
// of a broker (a full budget keeps nothing more). Only a queue taken from in the last
// RECENT_APPENDS_IDLE_MS keeps anything: with nobody taking, the copies would only cost. What is
// kept is let go one to two RECENT_APPENDS_IDLE_MS after the last take.
//
// The key and value bytes of one append are copied into buffers of their own, each holding a run of
// its records and nothing else (no spare room, no other append's or queue's bytes): a payload that
// stays a view of one (disk storage: Delivery.decode shares read buffers) keeps at most its own
// append's run alive, as a view of a log read keeps that read's buffer.
import { assert, type Clock, type TimerHandle } from '../../common/index.js';
import type { LogRecord, RecordInput } from '../../storage/index.js';
import { recordBytes } from './queue-record.js';

/** Largest total of record bytes one queue keeps (appends on their way included). */
export const RECENT_APPENDS_QUEUE_BYTES = 32 * 1024 * 1024;
/** Largest total all queues of a broker keep together. */
export const RECENT_APPENDS_BROKER_BYTES = 256 * 1024 * 1024;
/** A queue not taken from for this long keeps no appends (and lets go of what it kept). */
export const RECENT_APPENDS_IDLE_MS = 1_000;
/** Most bytes one copy buffer holds (one allocation per run of an append's records). */
const RUN_BYTES = 64 * 1024;

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

/** One append's copies: records at offsets baseOffset.. (each record's offset set). */
export interface CopiedAppend {
  readonly baseOffset: number;
  readonly records: LogRecord[];
  readonly bytes: number;
  /** Order of keeping, across levels (the oldest is dropped first). */
  seq: number;
}

interface Level {
  chunks: CopiedAppend[];
  /** chunks[head..] are current. */
  head: number;
}

export class RecentAppends {
  private readonly levels = new Map<number, Level>();
  /** Bytes of kept copies, and of copies whose appends are still on their way. */
  private keptBytes = 0;
  private reservedBytes = 0;
  private nextSeq = 0;
  private lastTakeMs = -Infinity;
  /** Looks every RECENT_APPENDS_IDLE_MS while anything is kept, and lets go once nobody takes. */
  private sweep: TimerHandle | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly budget: ByteBudget,
    private readonly maxBytes = RECENT_APPENDS_QUEUE_BYTES,
  ) {}

  /** Bytes held: kept copies and copies of appends on their way. */
  get bytes(): number {
    return this.keptBytes + this.reservedBytes;
  }

  /** Whether an append now should be copied for later: the queue was taken from lately. */
  wanted(): boolean {
    return this.clock.now() - this.lastTakeMs < RECENT_APPENDS_IDLE_MS;
  }

  /**
   * Copies records[from..] as they are appended at baseOffset + from (before the append resolves:
   * the caller's bytes may be reused after), making room by dropping the oldest kept appends.
   * Returns the copies for keep() or drop(), or null when they cannot fit this queue's bound or the
   * broker's budget.
   */
  copy(records: RecordInput[], from: number, baseOffset: number): CopiedAppend | null {
    let bytes = 0;
    for (let i = from; i < records.length; i++) bytes += recordBytes(records[i]);
    if (bytes > this.maxBytes) return null;
    while (this.bytes + bytes > this.maxBytes && this.dropOldest());
    if (this.bytes + bytes > this.maxBytes || !this.budget.tryReserve(bytes)) return null;
    this.reservedBytes += bytes;
    return { baseOffset: baseOffset + from, records: copyRecords(records, from, baseOffset), bytes, seq: -1 };
  }

  /** Keeps a copied append once it is durable. */
  keep(level: number, chunk: CopiedAppend): void {
    this.reservedBytes -= chunk.bytes;
    let l = this.levels.get(level);
    if (l === undefined) {
      l = { chunks: [], head: 0 };
      this.levels.set(level, l);
    }
    const last = l.head < l.chunks.length ? l.chunks[l.chunks.length - 1] : null;
    if (last !== null && last.baseOffset + last.records.length !== chunk.baseOffset) this.dropLevel(l);
    chunk.seq = this.nextSeq++;
    l.chunks.push(chunk);
    this.keptBytes += chunk.bytes;
    if (this.sweep === null) this.armSweep();
  }

  /** Gives back a copied append that will not be kept (its append failed, or the queue closed). */
  drop(chunk: CopiedAppend): void {
    this.reservedBytes -= chunk.bytes;
    this.budget.release(chunk.bytes);
  }

  /**
   * Kept records of level from `offset` on, up to the end of the append holding it; null when none
   * holds it (the caller reads the log). Appends wholly before offset are let go: a cursor does
   * not move back (a redelivery reads its one record from the log).
   */
  take(level: number, offset: number): LogRecord[] | null {
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

  /** A take's pass over the log started at nowMs (whether or not it finds anything kept): the queue is being read. */
  noteTake(nowMs: number): void {
    this.lastTakeMs = nowMs;
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

  /** Drops the append kept longest ago, whatever its level; false when nothing is kept. */
  private dropOldest(): boolean {
    let oldest: Level | null = null;
    for (const l of this.levels.values()) {
      if (l.head < l.chunks.length && (oldest === null || l.chunks[l.head].seq < oldest.chunks[oldest.head].seq))
        oldest = l;
    }
    if (oldest === null) return false;
    this.dropHead(oldest);
    return true;
  }

  private dropHead(l: Level): void {
    const c = l.chunks[l.head];
    l.chunks[l.head++] = undefined as unknown as CopiedAppend;
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

  private dropLevel(l: Level): void {
    while (l.head < l.chunks.length) this.dropHead(l);
  }
}

/**
 * records[from..] as kept records at their offsets, their keys and values copied into buffers
 * holding runs of up to RUN_BYTES of them (a larger value gets one of its own), each exactly as
 * large as what it holds. Header values are the broker's own (message-codec.ts), kept as they are.
 */
function copyRecords(records: RecordInput[], from: number, baseOffset: number): LogRecord[] {
  const out = new Array<LogRecord>(records.length - from);
  let i = from;
  while (i < records.length) {
    let size = 0;
    let end = i;
    while (end < records.length) {
      const n = (records[end].key?.length ?? 0) + (records[end].value?.length ?? 0);
      if (end > i && size + n > RUN_BYTES) break;
      size += n;
      end++;
    }
    const run: Uint8Array = size === 0 ? new Uint8Array(0) : Buffer.allocUnsafeSlow(size);
    // Read once per run: .buffer and .byteOffset are engine calls, not field loads.
    const memory = run.buffer;
    let at = run.byteOffset;
    const start = at;
    for (; i < end; i++) {
      const r = records[i];
      let key: Uint8Array | null = null;
      let value: Uint8Array | null = null;
      if (r.key !== null) {
        key = new Uint8Array(memory, at, r.key.length);
        key.set(r.key);
        at += r.key.length;
      }
      if (r.value !== null) {
        value = new Uint8Array(memory, at, r.value.length);
        value.set(r.value);
        at += r.value.length;
      }
      out[i - from] = { key, value, headers: r.headers, timestampMs: r.timestampMs, offset: baseOffset + i };
    }
    assert(at - start === size, 'a run buffer holds exactly the bytes copied into it');
  }
  return out;
}

/**
 * The record as a hand-off keeps it, with its offset: the key and value copied into buffers of
 * their own (the publisher's bytes may be reused once publish() returns; the log has its own copy).
 */
export function ownRecord(r: RecordInput, offset: number): LogRecord {
  // new Uint8Array(bytes) copies them.
  const key = r.key === null ? null : new Uint8Array(r.key);
  const value = r.value === null ? null : new Uint8Array(r.value);
  return { key, value, headers: r.headers, timestampMs: r.timestampMs, offset };
}
