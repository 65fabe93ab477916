// Processed ids kept in Wharf itself: each record is a message on a single-partition topic, read back
// into memory when the store opens. No extra database; but the record is written after the handler,
// so a crash between the two re-runs that one handler (at-least-once, with a window of one message).
import { WharfError } from '../../common/index.js';
import type { TopicMessage } from '../../broker/index.js';
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
  /** Longest wait for reading the existing records at open (default 30 s). */
  loadTimeoutMs?: number;
}

type Host = Pick<Wharf, 'createTopic' | 'stats' | 'subscribe' | 'publish'>;

const RECORD_TYPE = 'wharf.processed';

export class BrokerProcessedStore implements ProcessedStore<void> {
  private readonly seen = new Set<string>();
  private readonly lock = new KeyLock();

  private constructor(
    private readonly wharf: Host,
    private readonly topic: string,
    private readonly consumer: string,
    private readonly maxKeys: number,
  ) {}

  static async open(wharf: Host, options: BrokerProcessedStoreOptions): Promise<BrokerProcessedStore> {
    const consumer = options.consumer ?? 'default';
    const maxKeys = options.maxKeys ?? 1_000_000;
    if (!Number.isInteger(maxKeys) || maxKeys <= 0)
      throw new WharfError('INVALID_ARGUMENT', `maxKeys must be a positive integer, got ${maxKeys}`);
    try {
      await wharf.createTopic(options.topic, { partitions: 1, retentionMs: options.retentionMs ?? 7 * 86_400_000 });
    } catch (err) {
      if (!(err instanceof WharfError && err.code === 'ALREADY_EXISTS')) throw err;
    }
    const store = new BrokerProcessedStore(wharf, options.topic, consumer, maxKeys);
    await store.load(options.loadTimeoutMs ?? 30_000);
    return store;
  }

  async runOnce(key: string, fn: (tx: void) => Promise<void> | void): Promise<boolean> {
    return this.lock.with(key, async () => {
      if (this.seen.has(key)) return false;
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

  async has(key: string): Promise<boolean> {
    return this.seen.has(key);
  }

  async close(): Promise<void> {}

  private remember(key: string): void {
    this.seen.delete(key);
    this.seen.add(key);
    if (this.seen.size > this.maxKeys) this.seen.delete(this.seen.values().next().value as string);
  }

  /** Replays the topic from its start up to the end offset seen now. */
  private async load(timeoutMs: number): Promise<void> {
    const stats = await this.wharf.stats(this.topic);
    if (stats.kind !== 'topic')
      throw new WharfError(
        'INVALID_ARGUMENT',
        `${this.topic} is a ${stats.kind}, not a topic: give the store its own topic`,
      );
    const part = stats.partitions[0];
    if (!part || part.endOffset <= part.startOffset) return;
    const lastOffset = part.endOffset - 1;
    let done!: () => void;
    const caughtUp = new Promise<void>((r) => (done = r));
    const sub = await this.wharf.subscribe(this.topic, { from: 'earliest' }, (m: TopicMessage) => {
      const record = m.payload as { consumer?: string; key?: string } | null;
      if (m.type === RECORD_TYPE && record?.consumer === this.consumer && typeof record.key === 'string')
        this.remember(record.key);
      if (m.offset >= lastOffset) done();
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        caughtUp,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new WharfError('TIMEOUT', `reading processed ids from ${this.topic} took over ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      await sub.close();
    }
  }
}
