// The outbox relay's open (for PostgreSQL: taking the table's lock) is retried like a round: a source
// that cannot open yet (database not up, restarting, pool exhausted) delays the relay but never ends it.
import { describe, expect, it } from 'vitest';
import { OutboxRelay } from '../../src/patterns/index.js';
import type { OutboxRow, OutboxSource } from '../../src/patterns/outbox/types.js';
import { RecordingPublisher } from './recording-publisher.js';
import { waitFor } from './wait-for.js';

/** Rows in memory behind a source whose open fails openFailures times first. */
class FlakyOpenSource implements OutboxSource {
  readonly name = 'flaky';
  openCalls = 0;
  closed = false;
  private readonly rows: OutboxRow[] = [];

  constructor(private openFailures: number) {}

  add(row: OutboxRow): void {
    this.rows.push(row);
  }

  get pending(): number {
    return this.rows.length;
  }

  async open(): Promise<void> {
    this.openCalls++;
    if (this.openFailures > 0) {
      this.openFailures--;
      throw new Error('connection refused (injected)');
    }
  }

  async fetchPending(limit: number): Promise<OutboxRow[]> {
    return this.rows.slice(0, limit);
  }

  async markSent(ids: number[]): Promise<void> {
    for (const id of ids)
      this.rows.splice(
        this.rows.findIndex((r) => r.id === id),
        1,
      );
  }

  async markFailed(): Promise<void> {}

  waitForWork(timeoutMs: number): Promise<void> {
    return new Promise((r) => setTimeout(r, Math.min(timeoutMs, 10)));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

describe('outbox relay open', () => {
  it('a source that fails to open is retried with backoff, each failure reported, and then publishes', async () => {
    const source = new FlakyOpenSource(3);
    source.add({ id: 1, to: 'orders', message: { payload: 1 } });
    const target = new RecordingPublisher();
    const errors: string[] = [];
    const relay = new OutboxRelay(source, target, {
      retryDelayMs: 5,
      onError: (e) => errors.push(`${e.code} ${e.message}`),
    }).start();
    try {
      await waitFor(() => relay.published === 1, 5_000, 'the row published after the source opened');
      expect(source.openCalls).toBe(4);
      expect(errors).toEqual(Array(3).fill('INTERNAL connection refused (injected)'));
      expect(source.pending).toBe(0);
    } finally {
      await relay.stop();
    }
  });

  it('stop() during the backoff after a failed open ends the relay at once and closes the source', async () => {
    const source = new FlakyOpenSource(Number.POSITIVE_INFINITY);
    const errors: string[] = [];
    const relay = new OutboxRelay(source, new RecordingPublisher(), {
      retryDelayMs: 60_000,
      onError: (e) => errors.push(e.code),
    }).start();
    await waitFor(() => errors.length === 1, 5_000, 'the first failed open');
    const stoppedAtMs = Date.now();
    await relay.stop();
    expect(Date.now() - stoppedAtMs).toBeLessThan(1_000); // not after the 60 s backoff
    expect(source.closed).toBe(true);
    expect(source.openCalls).toBe(1);
  });
});
