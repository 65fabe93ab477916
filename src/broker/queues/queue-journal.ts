// The queue's durable state: ops (deliver, nack, settle) appended to a storage Journal, group-committed
// (all ops of one event-loop turn go in one entry, and concurrent entries share one fsync), and
// replaced by a snapshot once the journal grows, so recovery reads a snapshot plus a short tail.
//
// Entry grammar:  entry    = 0x01 op*            (ops batch)
//                          | 0x02 utf8-json      (StateSnapshot)
//                 op       = kind:u8 level:u8 count:u16 pad:u32 offset:f64 t1:f64 t2:f64   (32 bytes, LE)
import type { Journal } from '../../storage/index.js';
import { WharfError } from '../../common/index.js';

export type JournalOpKind = 'deliver' | 'nack' | 'settle' | 'settleRange';

/**
 * deliver: count = deliveryCount, t1 = firstDeliveredAt, t2 = this delivery's time.
 * nack: count = deliveryCount, t1 = visibleAtMs, t2 = firstDeliveredAt.
 * settle: offset settled. settleRange: [offset, t1) settled.
 */
export interface JournalOp {
  k: JournalOpKind;
  level: number;
  offset: number;
  count: number;
  t1: number;
  t2: number;
}

export interface StateSnapshot {
  levels: Array<Array<[number, number]>>;
  delay: Array<[number, number]>;
  /**
   * [level, offset, deliveryCount, firstDeliveredAt, lastDeliveredAt, visibleAtMs, leased]: leased
   * is 1 when the message's last delivery was neither settled nor handed back (its lease was open),
   * as a deliver op last in the journal says. Snapshots from before it have six fields (read as 0);
   * earlier versions read a seventh as nothing.
   */
  tracked: Array<[number, number, number, number, number, number, (0 | 1)?]>;
}

const KINDS: JournalOpKind[] = ['deliver', 'nack', 'settle', 'settleRange'];
const KIND_CODES = Object.fromEntries(KINDS.map((k, i) => [k, i])) as Record<JournalOpKind, number>;
const OP_BYTES = 32;

const OPS_BUFFER_INITIAL_BYTES = 64 * 1024;

/**
 * Ops waiting for the journal, encoded as they happen (an ops entry in the making): a queue emits
 * two ops per message (deliver, settle), and an object per op was a visible share of the garbage.
 */
export class OpsBuffer {
  private buf = new Uint8Array(OPS_BUFFER_INITIAL_BYTES);
  private view = new DataView(this.buf.buffer);
  private used = 1;

  constructor() {
    this.buf[0] = 1;
  }

  get count(): number {
    return (this.used - 1) / OP_BYTES;
  }

  push(kind: JournalOpKind, level: number, offset: number, count: number, t1: number, t2: number): void {
    if (this.used + OP_BYTES > this.buf.length) this.grow();
    const at = this.used;
    const view = this.view;
    view.setUint8(at, KIND_CODES[kind]);
    view.setUint8(at + 1, level);
    view.setUint16(at + 2, Math.min(count, 0xffff), true);
    view.setUint32(at + 4, 0, true);
    view.setFloat64(at + 8, offset, true);
    view.setFloat64(at + 16, t1, true);
    view.setFloat64(at + 24, t2, true);
    this.used += OP_BYTES;
  }

  private grow(): void {
    const next = new Uint8Array(this.buf.length * 2);
    next.set(this.buf.subarray(0, this.used));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** The ops so far as one journal entry (a copy), or null when there are none; the buffer empties. */
  take(): Uint8Array | null {
    if (this.used === 1) return null;
    const entry = this.buf.slice(0, this.used);
    this.used = 1;
    if (this.buf.length > OPS_BUFFER_INITIAL_BYTES * 16) {
      // A burst grew it: give the memory back.
      this.buf = new Uint8Array(OPS_BUFFER_INITIAL_BYTES);
      this.buf[0] = 1;
      this.view = new DataView(this.buf.buffer);
    }
    return entry;
  }
}

export function encodeSnapshot(s: StateSnapshot): Uint8Array {
  const json = Buffer.from(JSON.stringify(s), 'utf8');
  const buf = new Uint8Array(1 + json.length);
  buf[0] = 2;
  buf.set(json, 1);
  return buf;
}

export type DecodedEntry = { kind: 'ops'; ops: JournalOp[] } | { kind: 'snapshot'; snapshot: StateSnapshot };

export function decodeEntry(entry: Uint8Array): DecodedEntry {
  if (entry[0] === 2) {
    return { kind: 'snapshot', snapshot: JSON.parse(Buffer.from(entry.subarray(1)).toString('utf8')) as StateSnapshot };
  }
  if (entry[0] !== 1 || (entry.length - 1) % OP_BYTES !== 0) {
    throw new WharfError(
      'CORRUPT_DATA',
      `queue journal entry of ${entry.length} bytes has an unknown layout; restore the data directory from a backup`,
    );
  }
  const view = new DataView(entry.buffer, entry.byteOffset, entry.length);
  const ops: JournalOp[] = [];
  for (let at = 1; at < entry.length; at += OP_BYTES) {
    ops.push({
      k: KINDS[view.getUint8(at)],
      level: view.getUint8(at + 1),
      count: view.getUint16(at + 2, true),
      offset: view.getFloat64(at + 8, true),
      t1: view.getFloat64(at + 16, true),
      t2: view.getFloat64(at + 24, true),
    });
  }
  return { kind: 'ops', ops };
}

/**
 * Serialises journal writes: one ops entry (or snapshot rewrite) at a time. Ops produced while an
 * entry is being made durable wait and then go together in the next entry, so under load one fsync
 * covers many acks (measured: faster than handing every turn's entry to storage at once).
 */
export class JournalWriter {
  private chain: Promise<void> = Promise.resolve();
  private scheduled: Promise<void> | null = null;

  constructor(
    private readonly journal: Journal,
    private readonly takeOps: () => Uint8Array | null,
  ) {}

  get sizeBytes(): number {
    return this.journal.sizeBytes;
  }

  /** Resolves once every op taken so far is durable. */
  commit(): Promise<void> {
    if (this.scheduled !== null) return this.scheduled;
    const p = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.scheduled = null;
      const entry = this.takeOps();
      if (entry === null) return this.chain;
      return this.enqueue(() => this.journal.append(entry));
    });
    this.scheduled = p;
    return p;
  }

  /**
   * Replaces the journal by a snapshot taken when the rewrite starts (after earlier writes). Ops
   * applied to memory but not yet taken are in the snapshot and appended after it too: ops are
   * absolute, so replaying them is harmless.
   */
  rewrite(makeSnapshot: () => StateSnapshot): Promise<void> {
    return this.enqueue(() => this.journal.rewrite([encodeSnapshot(makeSnapshot())]));
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    const next = this.chain.then(job);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Waits for everything queued. */
  async drain(): Promise<void> {
    while (this.scheduled !== null) await this.scheduled.catch(() => undefined);
    await this.chain;
  }
}
