// Single publishes to one name made in the same tick are stored as one batch, as the remote client
// merges them into one PUBLISH frame. Each call to publish() with one message used to be a batch of
// its own through the whole publish path (idempotence, the queue's or topic's checks, a log batch
// with its header and checksum, a promise chain): a producer keeping a window of single publishes
// in flight spent about three times the CPU per message of the same messages published as one
// batch, most of it in the collector.
//
// What the caller sees does not change:
// - The message is taken as it is at the call: its payload is copied (a JSON value is serialised
//   now, to the text the broker would have stored), so the caller may reuse its object, headers or
//   bytes at once.
// - Each call resolves with its own result. When the broker refuses a merged batch for some
//   messages' sake (a bad field, too large, or a full queue that has room for some), each message
//   is published again alone, so only those fail. Nothing of a refused batch was stored, so
//   nothing is stored twice.
// - Calls to one name are stored in call order. Re-publishing a refused batch's messages one by one
//   must not let later publishes overtake them, so while a merged batch is unanswered, later
//   publishes to its name wait behind it (singles gather in the next batch). A publish of an array
//   goes in the same order: behind singles called before it.
import { JsonText, LIMITS, REFUSED_FOR_SOME_CODES, assert, isWharfError } from '../common/index.js';
import { jsonPayloadBytes } from './message-codec.js';
import type { MessageInput, Payload, PublishResult } from './types.js';

/** Publishes a batch to a name now, in call order with other batches to it. */
export type PublishBatch = (name: string, messages: MessageInput[]) => Promise<PublishResult[]>;

/** Bytes (payloads, keys, headers) that close a gathering batch early, as the remote client's default maxBatchBytes. */
export const MAX_GATHERED_BATCH_BYTES = 1024 * 1024;

interface Waiter {
  resolve: (r: PublishResult) => void;
  reject: (e: unknown) => void;
}

/** Single publishes gathered for one name. */
interface Gathered {
  readonly messages: MessageInput[];
  readonly waiters: Waiter[];
  /** Whether its messages carry a producerId and sequence (a batch holds stamped or unstamped ones only). */
  readonly stamped: boolean;
  /** Payload, key and header bytes: the batch is sent once they reach MAX_GATHERED_BATCH_BYTES. */
  bytes: number;
}

/** What waits behind a merged batch in flight: a gathered batch, or one publish of an array. */
type Held =
  | { gathered: Gathered }
  | { messages: MessageInput[]; resolve: (r: PublishResult[]) => void; reject: (e: unknown) => void };

export class SinglePublishes {
  /** Singles gathering this tick, per name (sent at the end of the tick, or once full). */
  private readonly gathering = new Map<string, Gathered>();
  /** Per name with a merged batch unanswered: what was published after it, in order. */
  private readonly held = new Map<string, Held[]>();
  private flushQueued = false;
  /** close() waiting for every held batch to be handed to the broker. */
  private heldWaiters: Array<() => void> = [];

  constructor(private readonly publishBatch: PublishBatch) {}

  /** One message: gathered with the others published to `name` this tick. */
  single(name: string, message: MessageInput): Promise<PublishResult> {
    const taken = takenNow(message);
    // A payload that cannot be serialised fails alone, with the error the broker gives it.
    if (taken === null) return this.publishBatch(name, [message]).then((r) => r[0]);
    // A dedupId may repeat a publish still in flight, and a batch holding such a repeat stores
    // nothing until that original has settled: singles gathered with it would wait with it. So it
    // goes alone, in order (as an array publish does).
    if (taken.dedupId !== undefined) return this.many(name, [taken]).then((r) => r[0]);
    // Stamped messages (producerId + sequence) are re-published with their sequences, so a repeat
    // answers as a duplicate even if a refused batch stored it: never in one batch with unstamped ones.
    const stamped = taken.producerId !== undefined || taken.sequence !== undefined;
    let g = this.gathering.get(name);
    if (g !== undefined && g.stamped !== stamped) {
      this.flushName(name);
      g = undefined;
    }
    if (g === undefined) this.gathering.set(name, (g = { messages: [], waiters: [], stamped, bytes: 0 }));
    const result = new Promise<PublishResult>((resolve, reject) => g.waiters.push({ resolve, reject }));
    g.messages.push(taken);
    g.bytes += inputBytes(taken);
    if (g.messages.length >= LIMITS.maxBatchMessages || g.bytes >= MAX_GATHERED_BATCH_BYTES) this.flushName(name);
    else if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flushAll());
    }
    return result;
  }

  /** A publish of an array: sent now, unless singles published before it to `name` are still to go. */
  many(name: string, messages: MessageInput[]): Promise<PublishResult[]> {
    if (this.gathering.has(name)) this.flushName(name);
    const queue = this.held.get(name);
    if (queue === undefined) return this.publishBatch(name, messages);
    // Taken as it is now, as a batch sent now would be.
    const taken = messages.map((m) => takenNow(m) ?? m);
    return new Promise((resolve, reject) => queue.push({ messages: taken, resolve, reject }));
  }

  /**
   * close(): sends what is gathering now. Null when everything has been handed to the broker;
   * otherwise (batches held behind a merged one unanswered) a promise for when it has been.
   */
  sendAll(): Promise<void> | null {
    this.flushAll();
    if (this.held.size === 0) return null;
    return new Promise((resolve) => this.heldWaiters.push(resolve));
  }

  /**
   * Sends what is gathering for every name now: before a publish that is not gathered (to another
   * name, or through an exchange that routes to a gathering one), a transaction, a delete or a purge, so
   * that what was called first goes first.
   */
  flushAll(): void {
    this.flushQueued = false;
    if (this.gathering.size === 0) return;
    for (const name of [...this.gathering.keys()]) this.flushName(name);
  }

  /** Sends the name's gathered singles now, or queues them behind the merged batch it waits for. */
  private flushName(name: string): void {
    const g = this.gathering.get(name);
    if (g === undefined) return;
    this.gathering.delete(name);
    const queue = this.held.get(name);
    if (queue !== undefined) queue.push({ gathered: g });
    else this.sendGathered(name, g);
  }

  private sendGathered(name: string, g: Gathered): void {
    assert(!this.held.has(name), 'nothing is sent to a name while a merged batch to it is unanswered');
    const { messages, waiters } = g;
    // Only a merged batch can be re-published message by message, so only it holds back what follows.
    const merged = waiters.length > 1;
    if (merged) this.held.set(name, []);
    this.publishBatch(name, messages).then(
      (results) => {
        for (let i = 0; i < waiters.length; i++) waiters[i].resolve(results[i]);
        if (merged) this.release(name);
      },
      (err: unknown) => {
        if (merged && isWharfError(err) && REFUSED_FOR_SOME_CODES.has(err.code)) {
          // Each alone, in order, before anything held: only the guilty one fails.
          let left = messages.length;
          for (let i = 0; i < messages.length; i++) {
            this.publishBatch(name, [messages[i]])
              .then(
                (r) => waiters[i].resolve(r[0]),
                (e: unknown) => waiters[i].reject(e),
              )
              .finally(() => {
                if (--left === 0) this.release(name);
              });
          }
          return;
        }
        for (const w of waiters) w.reject(err);
        if (merged) this.release(name);
      },
    );
  }

  /** Sends what waited behind a name's merged batch, in order, until one of them is merged again. */
  private release(name: string): void {
    const queue = this.held.get(name);
    assert(queue !== undefined, 'a merged batch holds its name until it is answered');
    this.held.delete(name);
    for (let i = 0; i < queue.length; i++) {
      const h = queue[i];
      if ('gathered' in h) this.sendGathered(name, h.gathered);
      else this.publishBatch(name, h.messages).then(h.resolve, h.reject);
      const again = this.held.get(name);
      if (again !== undefined) {
        // A merged batch just sent holds the rest back in turn.
        again.push(...queue.slice(i + 1));
        return;
      }
    }
    if (this.held.size === 0) for (const f of this.heldWaiters.splice(0)) f();
  }
}

/**
 * The message as it is now, so the caller may change its own objects once publish returns: the
 * payload copied (a JSON value serialised to the text the broker stores, as a JsonText) and the
 * headers copied. null when the payload cannot be serialised (published as it is, it fails alone).
 */
function takenNow(m: MessageInput): MessageInput | null {
  if (m === null || typeof m !== 'object') return null;
  const payload = copiedPayload(m.payload);
  if (payload === null) return null;
  const h = m.headers;
  // Every field named (a new MessageInput field fails to compile here until it is copied): one
  // object shape for every message. A spread of each caller's object gave each its own shape, and
  // the reads of its fields down the publish path (encodeMessage, the idempotence check) were then
  // over a quarter of an embedded producer's CPU.
  const taken: { [K in keyof Required<MessageInput>]: MessageInput[K] } = {
    id: m.id,
    type: m.type,
    key: m.key,
    headers: h !== null && typeof h === 'object' && !Array.isArray(h) ? { ...h } : h,
    payload,
    priority: m.priority,
    delayMs: m.delayMs,
    groupId: m.groupId,
    dedupId: m.dedupId,
    routingKey: m.routingKey,
    ttlMs: m.ttlMs,
    producerId: m.producerId,
    sequence: m.sequence,
    partition: m.partition,
  };
  return taken;
}

/** About what a message adds to a batch: its payload, key and header bytes (UTF-16 lengths for strings). */
function inputBytes(m: MessageInput): number {
  let n = (m.payload as Uint8Array).length + (typeof m.key === 'string' ? m.key.length : 0);
  const h = m.headers;
  if (h !== null && typeof h === 'object') for (const k in h) n += k.length + String(h[k]).length;
  return n;
}

function copiedPayload(p: Payload | undefined): Uint8Array | null {
  if (p instanceof JsonText) return JsonText.over(Buffer.from(p));
  if (p instanceof Uint8Array) return Buffer.from(p);
  const text = jsonPayloadBytes(p);
  return text === null ? null : JsonText.over(text);
}
