// Leased messages whose answer could not reach its client: a long poll (HTTP receive or native
// RECEIVE) whose client left while it waited. They were never delivered, so they go back visible
// at once and uncounted (Broker.releaseReceipt), as a consumer closing hands back messages its
// handler never ran; a delivery that reached no one must not move a message toward its
// dead-letter queue. Behind a Wharf that cannot release (a remote client used as the server's
// broker), each falls back to its nack, which counts.
import type { NackOptions } from '../broker/index.js';

interface Releaser {
  releaseReceipt(queue: string, receipt: string): Promise<void>;
}

function releaserOf(broker: object): Releaser | null {
  const b = broker as Partial<Releaser>;
  return typeof b.releaseReceipt === 'function' ? (b as Releaser) : null;
}

/** What handBack needs of one leased message: its receipt, and its nack when the broker cannot release. */
export interface Undelivered {
  receipt: string;
  nack?: (options: NackOptions) => Promise<void>;
}

/** Hands every message back; failures (the queue deleted meanwhile, a lease already expired) are ignored: the lease ends anyway. */
export async function handBack(broker: object, queue: string, leased: readonly Undelivered[]): Promise<void> {
  const releaser = releaserOf(broker);
  await Promise.all(
    leased.map((m) => {
      const done = releaser !== null ? releaser.releaseReceipt(queue, m.receipt) : m.nack?.({ delayMs: 0 });
      return done?.catch(() => undefined);
    }),
  );
}
