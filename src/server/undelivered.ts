// Leased messages whose answer could not reach its client: a long poll (HTTP receive or native
// RECEIVE) whose client left while it waited. They were never delivered, so they go back visible
// at once and uncounted (Broker.releaseReceipt), as a consumer closing hands back messages its
// handler never ran; a delivery that reached no one must not move a message toward its
// dead-letter queue. Behind a Wharf that cannot release, each is nacked with no delay instead (by
// receipt, or through the message), which counts.
import type { NackOptions } from '../broker/index.js';
import { WharfError } from '../common/index.js';

interface ReceiptBroker {
  releaseReceipt?(queue: string, receipt: string): Promise<void>;
  nackReceipt?(queue: string, receipt: string, options?: NackOptions): Promise<void>;
}

/** What handBack needs of one leased message: its receipt, and its nack for a broker that settles by neither. */
export interface Undelivered {
  receipt: string;
  nack?: (options: NackOptions) => Promise<void>;
}

const NOW: NackOptions = { delayMs: 0 };

function handBackOne(b: ReceiptBroker, queue: string, m: Undelivered): Promise<void> | undefined {
  if (typeof b.releaseReceipt === 'function') return b.releaseReceipt(queue, m.receipt);
  if (typeof b.nackReceipt === 'function') return b.nackReceipt(queue, m.receipt, NOW);
  return m.nack?.(NOW);
}

/** Hands one message back as handBack does, its failure reported (a RELEASE is answered with it). */
export function handBackOrFail(broker: object, queue: string, m: Undelivered): Promise<void> {
  return (
    handBackOne(broker as ReceiptBroker, queue, m) ??
    Promise.reject(
      new WharfError('INTERNAL', 'invariant violated: a message handed back has neither a receipt settler nor a nack'),
    )
  );
}

/** Hands every message back; failures (the queue deleted meanwhile, a lease already expired) are ignored: the lease ends anyway. */
export async function handBack(broker: object, queue: string, leased: readonly Undelivered[]): Promise<void> {
  const b = broker as ReceiptBroker;
  await Promise.all(leased.map((m) => handBackOne(b, queue, m)?.catch(() => undefined)));
}
