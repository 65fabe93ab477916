// Settling a queue delivery by its receipt string in a later HTTP request. Queue messages carry their
// own ack()/nack(); this book remembers them between the receive and the ack, bounded in count
// (maxHttpReceipts: beyond it the oldest entry is forgotten, and its ack gets RECEIPT_INVALID while the
// lease still expires and redelivers — at-least-once holds) and in time (an entry lives as long as its lease).
import { WharfError, type Clock } from '../../common/index.js';
import type { NackOptions, QueueMessage } from '../../broker/index.js';

interface Entry {
  queue: string;
  message: QueueMessage;
  expiresAtMs: number;
}

export class ReceiptBook {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  remember(queue: string, message: QueueMessage, leaseMs: number): void {
    this.dropExpiredHead();
    this.entries.set(message.receipt, { queue, message, expiresAtMs: this.clock.now() + leaseMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  async ack(queue: string, receipt: string): Promise<void> {
    const entry = this.take(queue, receipt);
    await this.settle(receipt, () => entry.message.ack());
  }

  async nack(queue: string, receipt: string, options: NackOptions): Promise<void> {
    const entry = this.take(queue, receipt);
    await this.settle(receipt, () => entry.message.nack(options));
  }

  private take(queue: string, receipt: string): Entry {
    const entry = this.entries.get(receipt);
    if (!entry || entry.queue !== queue || entry.expiresAtMs <= this.clock.now()) {
      if (entry && entry.expiresAtMs <= this.clock.now()) this.entries.delete(receipt);
      throw new WharfError(
        'RECEIPT_INVALID',
        `receipt ${JSON.stringify(receipt)} is not a live lease on queue "${queue}": it expired, was settled, or came from another queue; receive the message again`,
      );
    }
    return entry;
  }

  private async settle(receipt: string, op: () => Promise<void>): Promise<void> {
    try {
      await op();
      this.entries.delete(receipt);
    } catch (err) {
      if (err instanceof WharfError && err.code === 'RECEIPT_INVALID') this.entries.delete(receipt);
      throw err;
    }
  }

  /** Leases are mostly uniform per queue, so expired entries cluster at the head of insertion order. */
  private dropExpiredHead(): void {
    const now = this.clock.now();
    for (const [receipt, entry] of this.entries) {
      if (entry.expiresAtMs > now) break;
      this.entries.delete(receipt);
    }
  }
}
