// The outbox relay: publishes pending rows to Wharf in id order, then marks them sent.
// At-least-once: a crash between publish and mark re-publishes those rows; the broker drops the
// repeats because every row carries a stable dedupId (and producerId + sequence = row id).
import { WharfError, assert, toWharfError } from '../../common/index.js';
import type { MessageInput } from '../../broker/index.js';
import type { WharfPublisher } from '../publisher.js';
import type { OutboxRow, OutboxSource } from './types.js';

export interface OutboxRelayOptions {
  /** Stable across restarts: it is the producerId and the dedupId prefix. Default `outbox.<source name>`. */
  relayId?: string;
  /** Most rows read and published per round (default 100). */
  batchSize?: number;
  /** Longest wait between two looks at the table when no notification arrives (default 1000 ms). */
  pollIntervalMs?: number;
  /** First wait after a failed round or a failed open (e.g. taking the PostgreSQL lock); doubles up to maxRetryDelayMs. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Set producerId = relayId and sequence = row id on each message (default true). */
  producerSequence?: boolean;
  /** Called with each error the relay recovers from (a failed open, publish or database read). */
  onError?: (error: WharfError) => void;
  /** Fault injection for tests: runs after a batch is published and before it is marked sent. */
  afterPublish?: (rows: OutboxRow[]) => void | Promise<void>;
}

export class OutboxRelay {
  readonly relayId: string;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private publishedCount = 0;

  constructor(
    private readonly source: OutboxSource,
    private readonly publisher: WharfPublisher,
    private readonly options: OutboxRelayOptions = {},
  ) {
    this.relayId = options.relayId ?? `outbox.${source.name}`;
    this.batchSize = positive(options.batchSize ?? 100, 'batchSize');
    this.pollIntervalMs = positive(options.pollIntervalMs ?? 1000, 'pollIntervalMs');
    this.retryDelayMs = positive(options.retryDelayMs ?? 100, 'retryDelayMs');
    this.maxRetryDelayMs = positive(options.maxRetryDelayMs ?? 10_000, 'maxRetryDelayMs');
  }

  /** Rows this relay has published and marked sent. */
  get published(): number {
    return this.publishedCount;
  }

  start(): this {
    if (this.loop === null) this.loop = this.run();
    return this;
  }

  /** Stops after the round in flight; rows not yet marked are published again by the next relay. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.source.close();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    if (!(await this.open(signal))) return;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const rows = await this.source.fetchPending(this.batchSize);
        if (signal.aborted) break;
        if (rows.length === 0) {
          await this.source.waitForWork(this.pollIntervalMs, signal);
          continue;
        }
        await this.publishInOrder(rows);
        await this.options.afterPublish?.(rows);
        await this.source.markSent(rows.map((r) => r.id));
        this.publishedCount += rows.length;
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        this.report(err);
        await sleep(this.retryDelayAfter(++failures), signal);
      }
    }
  }

  /**
   * Opens the source, retrying with the same backoff as a round: a database not up yet, restarting,
   * or a pool with no free connection must not end a relay that start() reported as running.
   * Returns false only when stopped.
   */
  private async open(signal: AbortSignal): Promise<boolean> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.source.open(signal);
        return !signal.aborted;
      } catch (err) {
        if (signal.aborted) break;
        this.report(err);
        await sleep(this.retryDelayAfter(++failures), signal);
      }
    }
    return false;
  }

  /** retryDelayMs doubled per consecutive failure, at most maxRetryDelayMs. */
  private retryDelayAfter(failures: number): number {
    assert(failures >= 1, 'a retry delay follows at least one failure');
    return Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** Math.min(failures - 1, 20));
  }

  /** Consecutive rows for the same destination go out as one batch; order across rows is kept. */
  private async publishInOrder(rows: OutboxRow[]): Promise<void> {
    let i = 0;
    while (i < rows.length) {
      let j = i + 1;
      while (j < rows.length && rows[j].to === rows[i].to) j++;
      const batch = rows.slice(i, j).map((row) => this.stamp(row));
      await this.publisher.publish(rows[i].to, batch);
      i = j;
    }
  }

  private stamp(row: OutboxRow): MessageInput {
    const out: MessageInput = { ...row.message, dedupId: row.message.dedupId ?? `${this.relayId}:${row.id}` };
    if (this.options.producerSequence !== false) {
      out.producerId = this.relayId;
      out.sequence = row.id;
    }
    return out;
  }

  private report(err: unknown): void {
    this.options.onError?.(toWharfError(err));
  }
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new WharfError('INVALID_ARGUMENT', `outbox relay option ${name} must be a positive number, got ${value}`);
  }
  return value;
}

/** Waits ms, or less if the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
