// The results one idempotent producer's stored sequences resolve to when repeated, by sequence.
// A producer counting up (the remote client, most embedded ones) fills a ring of fixed-size byte
// slots: no object, no map entry and no string per message, so nothing here survives long enough
// to be promoted and then collected from the old generation (with a Map of 65,536 churning entries
// both were a measurable share of a remote publish). Sequences older than the run, sequences more
// than MAX_RUN_GAP past its end, and ids that do not fit a slot go to a map instead. The run steps
// over small gaps (a message the client never resent, a restart's scan reading a topic's
// partitions one after another), leaving empty slots that a late sequence may still fill, so one
// gap does not send a producer's every later result to the map. The run forgets its oldest
// sequence numbers past MAX_RESULTS_PER_PRODUCER, the map its oldest results.
import { assert, latin1Text } from '../common/index.js';
import type { PublishResult } from './types.js';

/** Per (target, producerId): sequence numbers the run spans (gaps included), and results the map holds. */
export const MAX_RESULTS_PER_PRODUCER = 65_536;

/** A remembered result: a bare id (queues, exchanges) or an id with its topic position. */
export type StoredResult = PublishResult | string;

/** The most sequences the run steps over at once; a larger gap sends the sequence to the map. */
export const MAX_RUN_GAP = 1024;

/** slot = idLength:u8 kind:u8 partition:u32 offset:f64 id:ascii[ID_MAX_BYTES]; idLength EMPTY = no result (a gap) */
const SLOT_BYTES = 48;
const ID_AT = 14;
const ID_MAX_BYTES = SLOT_BYTES - ID_AT;
const KIND_ID = 0;
const KIND_PARTITION = 1;
const KIND_POSITION = 2;
const RING_INITIAL_SLOTS = 64;
const EMPTY = 0xff;

export class ProducerResults {
  /** Published since the producer table last passed it (ProducerDedupe.evictOne's second chance). */
  publishedSincePassed = false;
  /** Highest sequence ever put here (forgotten ones included): a higher one is new, with no lookup. */
  maxStored = -1;
  /** The run: sequences first .. first + count - 1, sequence s in slot s & (slots - 1). */
  private ring: Buffer | null = null;
  private slots = 0;
  private first = 0;
  /** Sequence numbers the run spans, empty slots included. */
  private count = 0;
  /** Slots of the run that hold a result. */
  private filled = 0;
  private readonly others = new Map<number, StoredResult>();
  /**
   * The map's sequences in the order they were first remembered, from `head`: the oldest is
   * forgotten first (not Map#keys().next(): after many deletes V8 walks every deleted slot).
   */
  private order: number[] = [];
  private head = 0;

  get size(): number {
    return this.filled + this.others.size;
  }

  private inRun(sequence: number): boolean {
    return sequence >= this.first && sequence < this.first + this.count;
  }

  private slotAt(sequence: number): number {
    return (sequence & (this.slots - 1)) * SLOT_BYTES;
  }

  /** A sequence is in the run's slot or, when that is empty or outside the run, in the map. */
  private inRing(sequence: number): boolean {
    return this.inRun(sequence) && this.ring![this.slotAt(sequence)] !== EMPTY;
  }

  has(sequence: number): boolean {
    return this.inRing(sequence) || this.others.has(sequence);
  }

  get(sequence: number): StoredResult | undefined {
    if (!this.inRing(sequence)) return this.others.get(sequence);
    const ring = this.ring!;
    const at = this.slotAt(sequence);
    const id = latin1Text(ring, at + ID_AT, at + ID_AT + ring[at]);
    const kind = ring[at + 1];
    if (kind === KIND_ID) return id;
    const partition = ring.readUInt32LE(at + 2);
    return kind === KIND_PARTITION ? { id, partition } : { id, partition, offset: ring.readDoubleLE(at + 6) };
  }

  /** Remembers a stored sequence's result; one remembered already keeps its result and its place. */
  put(sequence: number, result: StoredResult): void {
    if (sequence <= this.maxStored && this.has(sequence)) return;
    if (sequence > this.maxStored) this.maxStored = sequence;
    if (this.fitsRun(sequence) && this.putInRun(sequence, result)) return;
    this.others.set(sequence, result);
    this.order.push(sequence);
    if (this.others.size > MAX_RESULTS_PER_PRODUCER) {
      this.others.delete(this.order[this.head++]);
      if (this.head >= MAX_RESULTS_PER_PRODUCER) {
        this.order = this.order.slice(this.head);
        this.head = 0;
      }
    }
  }

  /** Whether the run can hold sequence: an empty slot of it, the next one, or one a small gap ahead. */
  private fitsRun(sequence: number): boolean {
    if (this.count === 0 || this.inRun(sequence)) return true; // inRun: an empty slot (has() was false)
    const end = this.first + this.count;
    return sequence >= end && sequence - end <= MAX_RUN_GAP;
  }

  /** Adds one sequence number at the run's end, forgetting the oldest when the ring is full. */
  private extend(): void {
    if (this.count === this.slots) {
      if (this.slots < MAX_RESULTS_PER_PRODUCER) this.grow();
      else {
        // Forget the oldest: its slot is the one the new sequence takes.
        if (this.ring![this.slotAt(this.first)] !== EMPTY) this.filled--;
        this.first++;
        this.count--;
      }
    }
    this.ring![this.slotAt(this.first + this.count)] = EMPTY;
    this.count++;
  }

  /** Writes the result into the run (stepping over a gap first); false, nothing changed, when the id does not fit a slot. */
  private putInRun(sequence: number, result: StoredResult): boolean {
    const id = typeof result === 'string' ? result : result.id;
    if (id.length > ID_MAX_BYTES) return false;
    for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) > 127) return false;
    if (this.count === 0) this.first = sequence;
    while (sequence >= this.first + this.count) this.extend();
    const ring = this.ring!;
    const at = this.slotAt(sequence);
    ring[at] = id.length;
    for (let i = 0; i < id.length; i++) ring[at + ID_AT + i] = id.charCodeAt(i);
    if (typeof result === 'string' || result.partition === undefined) ring[at + 1] = KIND_ID;
    else {
      ring.writeUInt32LE(result.partition, at + 2);
      if (result.offset === undefined) ring[at + 1] = KIND_PARTITION;
      else {
        ring[at + 1] = KIND_POSITION;
        ring.writeDoubleLE(result.offset, at + 6);
      }
    }
    this.filled++;
    assert(this.count <= this.slots && this.filled <= this.count, 'the run fits its ring');
    return true;
  }

  /** Doubles the ring; every remembered sequence moves to its slot in the larger one. */
  private grow(): void {
    const slots = Math.max(RING_INITIAL_SLOTS, this.slots * 2);
    const next = Buffer.allocUnsafe(slots * SLOT_BYTES);
    if (this.ring !== null) {
      for (let s = this.first; s < this.first + this.count; s++) {
        const from = (s & (this.slots - 1)) * SLOT_BYTES;
        this.ring.copy(next, (s & (slots - 1)) * SLOT_BYTES, from, from + SLOT_BYTES);
      }
    }
    this.ring = next;
    this.slots = slots;
  }
}
