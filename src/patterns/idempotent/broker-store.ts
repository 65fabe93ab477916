// Processed ids kept in Wharf itself: each record is a message on a single-partition topic, read into
// memory from the start at open and followed from then on, so instances in other processes (members of
// one consumer group) see each other's records. No extra database; but the record is written after the
// handler, so a crash between the two re-runs that one handler (at-least-once, with a window of one message).
import { WharfError, assert } from '../../common/index.js';
import type { Subscription, TopicMessage } from '../../broker/index.js';
import type { Wharf } from '../../broker/index.js';
import { KeyLock } from './key-lock.js';
import type { ProcessedStore } from './types.js';

export interface BrokerProcessedStoreOptions {
  /** Topic holding the records (created with one partition when missing). */
  topic: string;
  /** Separates consumers sharing the topic. Default "default". */
  consumer?: string;
  /** How long records are kept (topic retention; default 7 days): longer than any redelivery can take. */
  retentionMs?: number;
  /** Most keys held in memory; the oldest are forgotten first (default 1,000,000). */
  maxKeys?: number;
  /**
   * Longest wait for reading the records: at open, those already there; before a key not in memory
   * is answered "not processed", those written up to then (default 30 s).
   */
  loadTimeoutMs?: number;
}

type Host = Pick<Wharf, 'createTopic' | 'stats' | 'subscribe' | 'publish'>;

const RECORD_TYPE = 'wharf.processed';

/** A check waiting for the reader to pass an offset. */
interface Waiter {
  offset: number;
  resolve: () => void;
  reject: (err: WharfError) => void;
}

export class BrokerProcessedStore implements ProcessedStore<void> {
  private readonly seen = new Set<string>();
  private readonly lock = new KeyLock();
  private reader: Subscription | null = null;
  /** The offset after the last record read: every record below it is in seen (or was forgotten by maxKeys). */
  private readOffset = 0;
  /** Checks waiting for the reader; at most one per runOnce/has in flight. */
  private readonly waiters = new Set<Waiter>();
  /** Why the reader stopped (its topic deleted, the store or its broker closed); then no miss can be answered. */
  private stopped: WharfError | null = null;

  private constructor(
    private readonly wharf: Host,
    private readonly topic: string,
    private readonly consumer: string,
    private readonly maxKeys: number,
    private readonly readTimeoutMs: number,
  ) {}

  static async open(wharf: Host, options: BrokerProcessedStoreOptions): Promise<BrokerProcessedStore> {
    const consumer = options.consumer ?? 'default';
    const maxKeys = options.maxKeys ?? 1_000_000;
    if (!Number.isInteger(maxKeys) || maxKeys <= 0)
      throw new WharfError('INVALID_ARGUMENT', `maxKeys must be a positive integer, got ${maxKeys}`);
    const readTimeoutMs = options.loadTimeoutMs ?? 30_000;
    if (!Number.isFinite(readTimeoutMs) || readTimeoutMs <= 0)
      throw new WharfError('INVALID_ARGUMENT', `loadTimeoutMs must be a positive number, got ${readTimeoutMs}`);
    try {
      await wharf.createTopic(options.topic, { partitions: 1, retentionMs: options.retentionMs ?? 7 * 86_400_000 });
    } catch (err) {
      if (!(err instanceof WharfError && err.code === 'ALREADY_EXISTS')) throw err;
    }
    const store = new BrokerProcessedStore(wharf, options.topic, consumer, maxKeys, readTimeoutMs);
    try {
      await store.follow();
      await store.catchUp();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  async runOnce(key: string, fn: (tx: void) => Promise<void> | void): Promise<boolean> {
    return this.lock.with(key, async () => {
      if (await this.has(key)) return false;
      await fn();
      await this.wharf.publish(this.topic, {
        type: RECORD_TYPE,
        key: `${this.consumer}/${key}`,
        payload: { consumer: this.consumer, key },
      });
      this.remember(key);
      return true;
    });
  }

  /**
   * A key not in memory is looked for in the records written up to now, by any instance: the reader
   * may not have reached them yet, and answering "no" early re-runs a handler another member ran.
   */
  async has(key: string): Promise<boolean> {
    if (this.seen.has(key)) return true;
    await this.catchUp();
    return this.seen.has(key);
  }

  async close(): Promise<void> {
    this.stop(new WharfError('CLOSED', `the processed store on ${this.topic} is closed; open it again`));
    const reader = this.reader;
    this.reader = null;
    await reader?.close();
  }

  private remember(key: string): void {
    this.seen.delete(key);
    this.seen.add(key);
    if (this.seen.size > this.maxKeys) this.seen.delete(this.seen.values().next().value as string);
  }

  /** Reads the topic from its start, and every record written after, for as long as the store is open. */
  private async follow(): Promise<void> {
    const stats = await this.wharf.stats(this.topic);
    if (stats.kind !== 'topic')
      throw new WharfError(
        'INVALID_ARGUMENT',
        `${this.topic} is a ${stats.kind}, not a topic: give the store its own topic`,
      );
    this.reader = await this.wharf.subscribe(this.topic, { from: 'earliest' }, (m: TopicMessage) => this.read(m));
    void this.reader.ended.then((err) =>
      this.stop(err ?? new WharfError('CLOSED', `the reader of ${this.topic} was closed with its broker or client`)),
    );
  }

  private read(m: TopicMessage): void {
    const record = m.payload as { consumer?: string; key?: string } | null;
    if (m.type === RECORD_TYPE && record?.consumer === this.consumer && typeof record.key === 'string')
      this.remember(record.key);
    this.readOffset = Math.max(this.readOffset, m.offset + 1);
    for (const w of this.waiters) {
      if (w.offset > this.readOffset) continue;
      this.waiters.delete(w);
      w.resolve();
    }
  }

  /** Resolves once the reader has passed every record written before this call (the end offset it finds). */
  private async catchUp(): Promise<void> {
    if (this.stopped !== null) throw this.stopped;
    const stats = await this.wharf.stats(this.topic);
    if (stats.kind !== 'topic') throw new WharfError('NOT_FOUND', `${this.topic} is no longer a topic`);
    const part = stats.partitions[0];
    // Records below startOffset were deleted by retention: the reader has nothing to read there.
    if (!part || part.endOffset <= Math.max(this.readOffset, part.startOffset)) return;
    await this.readerAt(part.endOffset);
  }

  private readerAt(offset: number): Promise<void> {
    assert(offset > this.readOffset, 'a check waits only for records the reader has not passed');
    if (this.stopped !== null) return Promise.reject(this.stopped);
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const waiter: Waiter = {
        offset,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.add(waiter);
      timer = setTimeout(() => {
        this.waiters.delete(waiter);
        waiter.reject(
          new WharfError(
            'TIMEOUT',
            `reading processed ids from ${this.topic} up to offset ${offset} took over ${this.readTimeoutMs} ms (read up to ${this.readOffset})`,
          ),
        );
      }, this.readTimeoutMs);
    });
  }

  /** No more records will be read: every waiting check fails with why. */
  private stop(err: WharfError): void {
    this.stopped ??= err;
    for (const w of this.waiters) w.reject(err);
    this.waiters.clear();
  }
}
