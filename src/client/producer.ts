// Producer side of the remote client: batches publishes per target (linger + max batch size) into
// PUBLISH frames, and makes them idempotent: every message without its own producerId gets this
// client's producerId and the next sequence of its target, so a batch re-sent after a reconnect is
// stored once (the broker dedupes (producerId, target, sequence)).
import { randomBytes } from 'node:crypto';
import { ChurnMap, JsonText, LIMITS, WharfError, isWharfError } from '../common/index.js';
import { OP, decodePublishOk, encodePublish, type MessageInput, type PublishResult } from '../protocol/index.js';
import type { ClientConnection } from './connection.js';

export interface ProducerOptions {
  /** How long a single publish waits for others to share its batch; 0 = until the end of the current tick. */
  lingerMs: number;
  /** Most messages in one PUBLISH frame. */
  maxBatchMessages: number;
  /** Byte-payload bytes that close a batch early (frames must stay under the server's maxFrameBytes). */
  maxBatchBytes: number;
  /** false: do not stamp producerId/sequence (no idempotence). */
  idempotent: boolean;
}

interface Waiter {
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
}

interface PendingBatch {
  messages: MessageInput[];
  waiters: Waiter[];
  bytes: number;
  timer: NodeJS.Timeout | null;
}

/**
 * The message as it is when publish() is called. A message waits in its batch until the end of the
 * tick (or lingerMs), and is encoded again if its frame is re-sent after a reconnect: without this,
 * a caller that reuses its message object, its headers or its payload's bytes once publish()
 * returns would have the later state stored (the embedded Broker serialises JSON payloads and
 * headers at the call too). The JSON payload is serialised now (once, as it would be anyway); bytes
 * and headers are copied.
 */
export function snapshotMessage(m: MessageInput): MessageInput {
  if (m === null || typeof m !== 'object') return m; // the encoder refuses it with its own message
  const p = m.payload;
  let payload = p;
  // new Uint8Array(view) copies; Buffer's slice() would not.
  if (p instanceof JsonText) payload = JsonText.over(new Uint8Array(p));
  else if (p instanceof Uint8Array) payload = new Uint8Array(p);
  else if (p !== undefined) {
    let text: string | undefined;
    try {
      text = JSON.stringify(p);
    } catch {
      text = undefined; // a cycle or a BigInt: left as it is, for the encoder to refuse
    }
    if (text !== undefined) payload = JsonText.over(Buffer.from(text, 'utf8'));
  }
  const copy: MessageInput = { ...m, payload };
  if (m.headers !== undefined && m.headers !== null && typeof m.headers === 'object') copy.headers = { ...m.headers };
  return copy;
}

/**
 * The results of a PUBLISH frame this client sent again after a reconnect. A message whose sequence
 * the client stamped and that the server reports as a repeat of that sequence (its first send was
 * stored; only the confirm was lost) resolves as the original's result, not as a duplicate: the
 * caller published it once. A message carrying its own producerId is the caller's to number, and a
 * dedupId or content repeat is a duplicate whichever send found it: both stay as the server says.
 */
export function asPublishedOnce(results: PublishResult[], messages: readonly MessageInput[]): PublishResult[] {
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    const m = messages[i];
    const stamped = m.producerId === undefined && m.sequence === undefined; // as encodeMessageInput decides
    if (r.repeatedSequence !== true || !stamped) continue;
    const once: PublishResult = { ...r };
    delete once.duplicate;
    delete once.repeatedSequence;
    results[i] = once;
  }
  return results;
}

function approxBytes(m: MessageInput): number {
  const p = m.payload;
  return 64 + (p instanceof Uint8Array ? p.length : typeof p === 'string' ? p.length : 0);
}

export class Producer {
  readonly producerId = `p-${randomBytes(8).toString('hex')}`;
  private readonly sequences = new Map<string, number>();
  private readonly batches = new ChurnMap<string, PendingBatch>();
  private microtaskQueued = false;

  constructor(
    private readonly conn: ClientConnection,
    private readonly options: ProducerOptions,
  ) {}

  /** Reserves `count` sequences of a target; returns the first. */
  private nextSequences(target: string, count: number): number | undefined {
    if (!this.options.idempotent) return undefined;
    const base = this.sequences.get(target) ?? 0;
    this.sequences.set(target, base + count);
    return base;
  }

  /** Sends a ready batch as one PUBLISH; resolves with one result per message. */
  send(target: string, messages: MessageInput[], fixedBase?: number): Promise<PublishResult[]> {
    if (typeof target !== 'string') return Promise.reject(new WharfError('INVALID_ARGUMENT', `name is ${typeof target}; pass a topic, queue or exchange name`));
    if (messages.length === 0) return Promise.resolve([]);
    if (messages.length > LIMITS.maxBatchMessages) {
      return Promise.reject(new WharfError('INVALID_ARGUMENT', `${messages.length} messages in one publish is over maxBatchMessages (${LIMITS.maxBatchMessages}); split the batch`));
    }
    const chunks: Promise<PublishResult[]>[] = [];
    for (let i = 0; i < messages.length; i += 0xffff) {
      const part = messages.length <= 0xffff ? messages : messages.slice(i, i + 0xffff);
      const base = fixedBase !== undefined ? fixedBase + i : this.nextSequences(target, part.length);
      const producerId = base === undefined ? undefined : this.producerId;
      chunks.push(
        this.conn.request(
          OP.PUBLISH,
          (w) => encodePublish(w, target, part, producerId, base),
          (_op, r, resent) => (resent && producerId !== undefined ? asPublishedOnce(decodePublishOk(r), part) : decodePublishOk(r)),
        ),
      );
    }
    return chunks.length === 1 ? chunks[0] : Promise.all(chunks).then((parts) => parts.flat());
  }

  /** One message, batched with others to the same target published in the linger window. */
  publishOne(target: string, message: MessageInput): Promise<PublishResult> {
    let batch = this.batches.get(target);
    if (batch === undefined) {
      batch = { messages: [], waiters: [], bytes: 0, timer: null };
      this.batches.set(target, batch);
      if (this.options.lingerMs > 0) batch.timer = setTimeout(() => this.flushTarget(target), this.options.lingerMs);
    }
    const p = new Promise<PublishResult>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    batch.messages.push(message);
    batch.bytes += approxBytes(message);
    if (batch.messages.length >= this.options.maxBatchMessages || batch.bytes >= this.options.maxBatchBytes) {
      this.flushTarget(target);
    } else if (this.options.lingerMs === 0 && !this.microtaskQueued) {
      this.microtaskQueued = true;
      queueMicrotask(() => {
        this.microtaskQueued = false;
        this.flushAll();
      });
    }
    return p;
  }

  flushAll(): void {
    for (const target of [...this.batches.keys()]) this.flushTarget(target);
  }

  /** Sends the target's waiting batch now (nothing when none waits). */
  flushTarget(target: string): void {
    const batch = this.batches.get(target);
    if (batch === undefined) return;
    this.batches.delete(target);
    if (batch.timer !== null) clearTimeout(batch.timer);
    const waiters = batch.waiters;
    const messages = batch.messages;
    const base = this.nextSequences(target, messages.length);
    this.send(target, messages, base).then(
      (results) => {
        for (let i = 0; i < waiters.length; i++) waiters[i].resolve(results[i]);
      },
      (err: unknown) => {
        // One bad message fails its whole frame; unbatched publishes must not fail for a neighbour's
        // mistake, so retry each alone (same sequences, so nothing stored twice).
        if (waiters.length > 1 && isWharfError(err) && (err.code === 'INVALID_ARGUMENT' || err.code === 'MESSAGE_TOO_LARGE')) {
          for (let i = 0; i < waiters.length; i++) {
            this.send(target, [messages[i]], base === undefined ? undefined : base + i).then(
              (r) => waiters[i].resolve(r[0]),
              (e: Error) => waiters[i].reject(e),
            );
          }
          return;
        }
        for (const w of waiters) w.reject(err as Error);
      },
    );
  }
}
