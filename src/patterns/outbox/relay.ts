// The outbox relay: publishes pending rows to Wharf in id order, then marks them sent.
// At-least-once: a crash between publish and mark re-publishes those rows; the broker drops the
// repeats because every row carries a stable dedupId (and producerId + sequence = row id).
// A row the broker refuses for good is set aside as failed, so it cannot hold up every later row.
import { LIMITS, WharfError, assert, toWharfError, type ErrorCode } from '../../common/index.js';
import { checkProducerFields, type MessageInput } from '../../broker/index.js';
import type { WharfPublisher } from '../publisher.js';
import type { OutboxFailure, OutboxRow, OutboxSource } from './types.js';

/**
 * Refusals of a message that no retry can change: it is invalid for its target (a header, the
 * partition, the name) or larger than the target takes. Anything else is retried in order: a broker
 * down, full or rate limiting, and also NOT_FOUND, because a target created after the relay starts
 * (deploy order) or re-created must get its rows in order, not have them set aside.
 */
const PERMANENT_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['INVALID_ARGUMENT', 'MESSAGE_TOO_LARGE']);

/** What one round did with its rows: each is either published or set aside. */
interface RoundOutcome {
  sentIds: number[];
  failed: Array<{ row: OutboxRow; error: WharfError }>;
}

export interface OutboxRelayOptions {
  /** Stable across restarts: it is the producerId and the dedupId prefix. Default `outbox.<source name>`. */
  relayId?: string;
  /** Most rows read and published per round (default 100, at most maxBatchMessages). */
  batchSize?: number;
  /** Longest wait between two looks at the table when no notification arrives (default 1000 ms). */
  pollIntervalMs?: number;
  /** First wait after a failed round or a failed open (e.g. taking the PostgreSQL lock); doubles up to maxRetryDelayMs. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Set producerId = relayId and sequence = row id on each message (default true). */
  producerSequence?: boolean;
  /**
   * Called with each error the relay recovers from (a failed open, publish or database read), and
   * for each row set aside as failed (the broker's code; details.outboxRowId names the row).
   */
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
  private failedCount = 0;

  constructor(
    private readonly source: OutboxSource,
    private readonly publisher: WharfPublisher,
    private readonly options: OutboxRelayOptions = {},
  ) {
    this.relayId = options.relayId ?? `outbox.${source.name}`;
    this.batchSize = positive(options.batchSize ?? 100, 'batchSize');
    if (this.batchSize > LIMITS.maxBatchMessages) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `outbox relay option batchSize must be at most ${LIMITS.maxBatchMessages} (maxBatchMessages), got ${this.batchSize}`,
      );
    }
    // Stamped on every message: one the broker refuses would set every row aside.
    try {
      checkProducerFields([{ producerId: this.relayId, sequence: 0 }]);
    } catch (err) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `outbox relay option relayId is the producerId: ${(err as Error).message}`,
      );
    }
    this.pollIntervalMs = positive(options.pollIntervalMs ?? 1000, 'pollIntervalMs');
    this.retryDelayMs = positive(options.retryDelayMs ?? 100, 'retryDelayMs');
    this.maxRetryDelayMs = positive(options.maxRetryDelayMs ?? 10_000, 'maxRetryDelayMs');
  }

  /** Rows this relay has published and marked sent. */
  get published(): number {
    return this.publishedCount;
  }

  /** Rows this relay has set aside as failed (the broker refused them for good). */
  get failed(): number {
    return this.failedCount;
  }

  start(): this {
    if (this.loop === null) this.loop = this.run();
    return this;
  }

  /**
   * Stops after the round in flight; rows not yet marked are published again by the next relay. A
   * source bounds its own waits (PostgreSQL: for a pool connection, connectTimeoutMs).
   */
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
        const outcome = await this.publishInOrder(rows);
        await this.options.afterPublish?.(rows);
        await this.settle(outcome);
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

  /**
   * Consecutive rows for the same destination go out as one batch; order across rows is kept. A
   * transient failure throws (the round is retried from the oldest unsent row).
   */
  private async publishInOrder(rows: OutboxRow[]): Promise<RoundOutcome> {
    const outcome: RoundOutcome = { sentIds: [], failed: [] };
    let i = 0;
    while (i < rows.length) {
      let j = i + 1;
      while (j < rows.length && rows[j].to === rows[i].to) j++;
      await this.publishRun(rows.slice(i, j), outcome);
      i = j;
    }
    assert(outcome.sentIds.length + outcome.failed.length === rows.length, 'each row is either sent or failed');
    return outcome;
  }

  /**
   * A batch is refused as a whole: when it is refused for good, its rows go again one by one (in
   * order), so only the rows at fault are set aside and the rest are published.
   */
  private async publishRun(run: OutboxRow[], outcome: RoundOutcome): Promise<void> {
    try {
      await this.publisher.publish(
        run[0].to,
        run.map((row) => this.stamp(row)),
      );
      for (const row of run) outcome.sentIds.push(row.id);
      return;
    } catch (err) {
      const error = toWharfError(err);
      if (!PERMANENT_REFUSALS.has(error.code)) throw error;
      if (run.length === 1) {
        outcome.failed.push({ row: run[0], error });
        return;
      }
    }
    for (const row of run) await this.publishRun([row], outcome);
  }

  /** Marks the round's rows; each row set aside is reported, since nothing else will publish it. */
  private async settle(outcome: RoundOutcome): Promise<void> {
    if (outcome.sentIds.length > 0) await this.source.markSent(outcome.sentIds);
    if (outcome.failed.length > 0) {
      const failures: OutboxFailure[] = outcome.failed.map(({ row, error }) => ({
        id: row.id,
        error: `${error.code}: ${error.message}`,
      }));
      await this.source.markFailed(failures);
    }
    this.publishedCount += outcome.sentIds.length;
    this.failedCount += outcome.failed.length;
    for (const { row, error } of outcome.failed) {
      this.report(
        new WharfError(
          error.code,
          `outbox row ${row.id} to ${JSON.stringify(row.to)} is set aside as failed and later rows go on: ${error.message}. ` +
            'Fix the cause, then retryFailed or deleteFailed it',
          { details: { outboxRowId: row.id, to: row.to }, cause: error },
        ),
      );
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
