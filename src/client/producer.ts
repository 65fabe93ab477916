// Producer side of the remote client: batches publishes per target (linger + max batch size) into
// PUBLISH frames, and makes them idempotent: every message without its own producerId gets this
// client's producerId and the next sequence of its target, so a batch re-sent after a reconnect is
// stored once (the broker dedupes (producerId, target, sequence)).
//
// Each message is encoded when publish() is called, into its batch's buffer. So the frame holds the
// message as it was then (the caller may reuse its object, headers or bytes at once, as embedded),
// a frame re-sent after a reconnect sends those same bytes, and nothing of the message is kept but
// its encoding: no copy of it per message, and a message the encoder refuses fails its own publish
// at once instead of its whole batch.
//
// Frames to one target are stored in the order they were published, as embedded. Single publishes
// merged into one frame are re-sent one by one if the server refuses one of them; frames sent
// meanwhile would be stored before the good ones, so while such a shared frame is unanswered, later
// frames to its target are held back (single publishes gather in the next batch) and go once it and
// any re-sends are done.
import { randomBytes } from 'node:crypto';
import { ChurnMap, LIMITS, REFUSED_FOR_SOME_CODES, WharfError, assert, isWharfError } from '../common/index.js';
import {
  OP,
  WireWriter,
  decodePublishOk,
  encodeMessageInput,
  encodePublishEncoded,
  type MessageInput,
  type PublishResult,
} from '../protocol/index.js';
import type { ClientConnection } from './connection.js';

export interface ProducerOptions {
  /** How long a single publish waits for others to share its batch; 0 = until the end of the current tick. */
  lingerMs: number;
  /** Most messages in one PUBLISH frame. */
  maxBatchMessages: number;
  /** Encoded bytes that close a batch early (frames must stay under the server's maxFrameBytes). */
  maxBatchBytes: number;
  /** false: do not stamp producerId/sequence (no idempotence). */
  idempotent: boolean;
}

interface Waiter {
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
}

interface BatchWaiter {
  resolve: (r: PublishResult[]) => void;
  reject: (e: Error) => void;
}

/** A frame to send: single publishes merged (one waiter each), or one publishMany (one waiter for all). */
type Frame = { batch: EncodedBatch; singles: Waiter[] } | { batch: EncodedBatch; many: BatchWaiter };

// A publish's messages go in one frame, whose count is a u16.
assert(LIMITS.maxBatchMessages <= 0xffff, 'a batch of maxBatchMessages fits one PUBLISH frame');
/** Batch buffers kept for reuse once their frame is answered; a fresh one per batch was garbage for the collector. */
const MAX_FREE_WRITERS = 4;
/** A buffer grown beyond this (a very large batch) goes to the collector instead. */
const MAX_KEPT_WRITER_BYTES = 4 * 1024 * 1024;
/**
 * A new batch buffer starts small (from Node's shared pool) and grows as messages come: one small
 * publish to each of many targets in a tick must not cost a large buffer each.
 */
const WRITER_INITIAL_BYTES = 2 * 1024;

/** Messages encoded back to back, the inputs of one PUBLISH frame. */
class EncodedBatch {
  /** Where each message's encoding starts in w. */
  readonly starts: number[] = [];
  /** Per message: whether this client stamped its producerId and sequence (asPublishedOnce). */
  readonly stamped: boolean[] = [];

  constructor(readonly w: WireWriter) {}

  get count(): number {
    return this.starts.length;
  }

  /**
   * Encodes m after the others, stamped with producerId and sequence unless it carries either
   * field itself. On failure nothing of it stays. Returns whether the stamp was used.
   */
  add(m: MessageInput, producerId: string | undefined, sequence: number | undefined): boolean {
    const start = this.w.pos;
    try {
      encodeMessageInput(this.w, m, producerId, sequence);
    } catch (err) {
      this.w.pos = start;
      throw err; // the encoder's INVALID_ARGUMENT, or what the caller's own code threw (a getter), as embedded
    }
    const stamped = producerId !== undefined && m.producerId === undefined && m.sequence === undefined;
    this.starts.push(start);
    this.stamped.push(stamped);
    return stamped;
  }

  /** The encoded inputs (a view: valid until the writer is given back). */
  inputs(): Uint8Array {
    return this.w.buf.subarray(0, this.w.pos);
  }

  /** Message i as a batch of its own, in a writer of its own (a copy). */
  single(i: number): EncodedBatch {
    const end = i + 1 < this.starts.length ? this.starts[i + 1] : this.w.pos;
    const one = new EncodedBatch(new WireWriter(end - this.starts[i]));
    one.starts.push(0);
    one.stamped.push(this.stamped[i]);
    one.w.raw(this.w.buf.subarray(this.starts[i], end));
    return one;
  }
}

/**
 * The results of a PUBLISH frame this client sent again after a reconnect. A message whose sequence
 * the client stamped (`stamped[i]`) and that the server reports as a repeat of that sequence (its
 * first send was stored; only the confirm was lost) resolves as the original's result, not as a
 * duplicate: the caller published it once. A message carrying its own producerId is the caller's to
 * number, and a dedupId or content repeat is a duplicate whichever send found it: both stay as the
 * server says.
 */
export function asPublishedOnce(results: PublishResult[], stamped: readonly boolean[]): PublishResult[] {
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r.repeatedSequence !== true || stamped[i] !== true) continue;
    const once: PublishResult = { ...r };
    delete once.duplicate;
    delete once.repeatedSequence;
    results[i] = once;
  }
  return results;
}

interface PendingBatch {
  batch: EncodedBatch;
  waiters: Waiter[];
  timer: NodeJS.Timeout | null;
}

function checkTarget(target: unknown): WharfError | null {
  return typeof target === 'string'
    ? null
    : new WharfError('INVALID_ARGUMENT', `name is ${typeof target}; pass a topic, queue or exchange name`);
}

export class Producer {
  readonly producerId = `p-${randomBytes(8).toString('hex')}`;
  private readonly sequences = new Map<string, number>();
  private readonly batches = new ChurnMap<string, PendingBatch>();
  /**
   * Targets with a shared frame (single publishes merged, so split and re-sent if the server refuses
   * one) still unanswered or being re-sent, each with the frames made for it since, in call order.
   * A target absent here sends at once.
   */
  private readonly held = new Map<string, Frame[]>();
  /** Frames in `held`, all targets: while reconnecting they count towards maxWaitingRequests. */
  private heldFrameCount = 0;
  private readonly freeWriters: WireWriter[] = [];
  private microtaskQueued = false;
  /**
   * > 0 while a message is being encoded into a batch. Encoding runs the caller's code (a payload's
   * toJSON, a getter), which may publish again: such a publish must not write into the batch in the
   * middle of a record, nor send that batch, so it goes in a frame of its own.
   */
  private encodeDepth = 0;

  constructor(
    private readonly conn: ClientConnection,
    private readonly options: ProducerOptions,
  ) {}

  private takeWriter(): WireWriter {
    return this.freeWriters.pop() ?? new WireWriter(WRITER_INITIAL_BYTES);
  }

  /** Once no frame can be sent from w again (answered, or failed for good). */
  private giveBack(w: WireWriter): void {
    if (this.freeWriters.length < MAX_FREE_WRITERS && w.buf.length <= MAX_KEPT_WRITER_BYTES)
      this.freeWriters.push(w.reset());
  }

  /**
   * Encodes m into batch with the target's next sequence. The sequence is taken before the caller's
   * code can run (a publish from inside it gets the next one), and given back when it went unused
   * and nothing took a later one (a gap would be harmless: the broker keeps sequences as a set).
   */
  private encodeInto(batch: EncodedBatch, target: string, m: MessageInput): void {
    this.encodeDepth++;
    try {
      if (!this.options.idempotent) {
        batch.add(m, undefined, undefined);
        return;
      }
      const sequence = this.sequences.get(target) ?? 0;
      this.sequences.set(target, sequence + 1);
      let stamped = false;
      try {
        stamped = batch.add(m, this.producerId, sequence);
      } finally {
        if (!stamped && this.sequences.get(target) === sequence + 1) this.sequences.set(target, sequence);
      }
    } finally {
      this.encodeDepth--;
    }
  }

  /** Sends a batch as one PUBLISH; resolves with one result per message. The caller gives its writer back once settled. */
  private send(target: string, batch: EncodedBatch): Promise<PublishResult[]> {
    const inputs = batch.inputs();
    const count = batch.count;
    const stamped = batch.stamped;
    return this.conn.request(
      OP.PUBLISH,
      (w) => encodePublishEncoded(w, target, count, inputs),
      (_op, r, resent) => (resent ? asPublishedOnce(decodePublishOk(r), stamped) : decodePublishOk(r)),
    );
  }

  /** A batch publish (at least one message; RemoteWharf answers an empty one): encoded now, sent as one frame. */
  publishMany(target: string, messages: readonly MessageInput[]): Promise<PublishResult[]> {
    const bad = checkTarget(target);
    if (bad !== null) return Promise.reject(bad);
    assert(messages.length > 0, 'an empty batch publish is answered before it reaches the producer');
    if (messages.length > LIMITS.maxBatchMessages) {
      return Promise.reject(
        new WharfError(
          'LIMIT_EXCEEDED',
          `${messages.length} messages in one publish is over maxBatchMessages (${LIMITS.maxBatchMessages}); split the batch`,
        ),
      );
    }
    const batch = new EncodedBatch(this.takeWriter());
    try {
      for (const m of messages) this.encodeInto(batch, target, m);
    } catch (err) {
      this.giveBack(batch.w);
      return Promise.reject(err as Error);
    }
    return new Promise<PublishResult[]>((resolve, reject) => {
      const frame: Frame = { batch, many: { resolve, reject } };
      if (this.held.has(target)) this.hold(target, frame);
      else this.transmit(target, frame);
    });
  }

  /** One message, batched with others to the same target published in the linger window. */
  publishOne(target: string, message: MessageInput): Promise<PublishResult> {
    const bad = checkTarget(target);
    if (bad !== null) return Promise.reject(bad);
    if (this.encodeDepth > 0) return this.publishMany(target, [message]).then((r) => r[0]); // see encodeDepth
    const waiting = this.batches.get(target);
    const encoded = waiting?.batch ?? new EncodedBatch(this.takeWriter());
    try {
      this.encodeInto(encoded, target, message);
    } catch (err) {
      if (waiting === undefined) this.giveBack(encoded.w); // a refused first message leaves no empty batch behind
      return Promise.reject(err as Error); // this message alone; a waiting batch goes on without it
    }
    let batch = waiting;
    if (batch === undefined) {
      batch = { batch: encoded, waiters: [], timer: null };
      this.batches.set(target, batch);
      if (this.options.lingerMs > 0) batch.timer = setTimeout(() => this.flushDue(target), this.options.lingerMs);
    }
    const p = new Promise<PublishResult>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (batch.batch.count >= this.options.maxBatchMessages || batch.batch.w.pos >= this.options.maxBatchBytes) {
      this.flushTarget(target);
    } else if (this.options.lingerMs === 0 && !this.microtaskQueued) {
      this.microtaskQueued = true;
      queueMicrotask(() => {
        this.microtaskQueued = false;
        for (const t of [...this.batches.keys()]) this.flushDue(t);
      });
    }
    return p;
  }

  flushAll(): void {
    for (const target of [...this.batches.keys()]) this.flushTarget(target);
  }

  /**
   * The target's batch has lingered its time: it is sent, unless frames to the target are held
   * back; then it goes on gathering single publishes, and is sent when they go (release).
   */
  private flushDue(target: string): void {
    if (!this.held.has(target)) this.flushTarget(target);
  }

  /** Sends the target's waiting batch now, or behind the frames held back for it (nothing when none waits). */
  flushTarget(target: string): void {
    if (this.encodeDepth > 0) {
      // Called from the caller's code while a message is half written into a batch (see encodeDepth).
      queueMicrotask(() => this.flushTarget(target));
      return;
    }
    const pending = this.batches.get(target);
    if (pending === undefined) return;
    this.batches.delete(target);
    if (pending.timer !== null) clearTimeout(pending.timer);
    const { batch, waiters } = pending;
    assert(
      batch.count > 0 && batch.count === waiters.length,
      'a pending batch holds one message per waiter, and at least one',
    );
    if (this.held.has(target)) this.hold(target, { batch, singles: waiters });
    else this.transmit(target, { batch, singles: waiters });
  }

  /** Queues a frame behind the shared frame its target waits for; refused as a request would be when too many wait. */
  private hold(target: string, frame: Frame): void {
    const queue = this.held.get(target);
    assert(queue !== undefined, 'a frame is held only behind a shared frame to its target');
    const refused = this.conn.waitingLimitError(this.heldFrameCount);
    if (refused !== null) {
      this.giveBack(frame.batch.w);
      if ('many' in frame) frame.many.reject(refused);
      else for (const w of frame.singles) w.reject(refused);
      return;
    }
    queue.push(frame);
    this.heldFrameCount++;
  }

  /** Sends the frames held back for a target, in order, until one of them is shared; then the target's batch. */
  private release(target: string): void {
    const queue = this.held.get(target);
    assert(queue !== undefined, 'a shared frame holds its target until it is done');
    this.held.delete(target);
    this.heldFrameCount -= queue.length;
    for (let i = 0; i < queue.length; i++) {
      const again = this.held.get(target);
      if (again !== undefined) {
        // A shared frame just sent holds the rest back in turn.
        for (let j = i; j < queue.length; j++) again.push(queue[j]);
        this.heldFrameCount += queue.length - i;
        return;
      }
      this.transmit(target, queue[i]);
    }
    // Single publishes made meanwhile gathered in the target's batch, after every frame held.
    if (!this.held.has(target)) this.flushTarget(target);
  }

  private transmit(target: string, frame: Frame): void {
    assert(!this.held.has(target), 'nothing goes to a target while frames to it are held back');
    const { batch } = frame;
    if ('many' in frame) {
      this.send(target, batch).then(
        (results) => {
          this.giveBack(batch.w);
          frame.many.resolve(results);
        },
        (err: Error) => {
          this.giveBack(batch.w);
          frame.many.reject(err);
        },
      );
      return;
    }
    const waiters = frame.singles;
    // Only a shared frame is split on a refusal (below), so only it holds back what follows.
    const shared = waiters.length > 1;
    if (shared) this.held.set(target, []);
    this.send(target, batch).then(
      (results) => {
        this.giveBack(batch.w);
        for (let i = 0; i < waiters.length; i++) waiters[i].resolve(results[i]);
        if (shared) this.release(target);
      },
      (err: unknown) => {
        // One message the server refuses fails its whole frame, and a full queue (or one over its
        // rate limit) refuses the whole frame where it would take some of its messages one by one;
        // unbatched publishes must not fail for their neighbours, so each is sent again alone (the
        // same bytes, so the same sequences: nothing is stored twice; a refused frame stored
        // nothing). They go in order, before anything held back.
        if (shared && isWharfError(err) && REFUSED_FOR_SOME_CODES.has(err.code)) {
          const singles = waiters.map((_, i) => batch.single(i));
          this.giveBack(batch.w);
          let resending = waiters.length;
          const resent = (): void => {
            if (--resending === 0) this.release(target);
          };
          for (let i = 0; i < waiters.length; i++) {
            this.send(target, singles[i]).then(
              (r) => {
                waiters[i].resolve(r[0]);
                resent();
              },
              (e: Error) => {
                waiters[i].reject(e);
                resent();
              },
            );
          }
          return;
        }
        this.giveBack(batch.w);
        for (const w of waiters) w.reject(err as Error);
        if (shared) this.release(target);
      },
    );
  }
}
