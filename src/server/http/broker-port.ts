// What the HTTP layer needs from a broker: topics and the core (publish, stats), plus queues and
// exchanges when the broker has them — a route group is registered only for what exists — plus
// settle-by-receipt (ackReceipt/nackReceipt) when the broker offers it.
import type { Wharf_Core } from '../../broker/index.js';
import type { Wharf_Topics } from '../../broker/index.js';
import type { Wharf_Exchanges } from '../../broker/index.js';
import type { NackOptions, Wharf_Queues } from '../../broker/index.js';

export type HttpBroker = Wharf_Core &
  Wharf_Topics &
  Partial<Wharf_Queues> &
  Partial<Wharf_Exchanges> & {
    ackReceipt?(queue: string, receipt: string): Promise<void>;
    nackReceipt?(queue: string, receipt: string, options?: NackOptions): Promise<void>;
    extendVisibilityReceipt?(queue: string, receipt: string, ms: number): Promise<void>;
  };

export type QueueCapable = HttpBroker & Wharf_Queues;
export type ExchangeCapable = HttpBroker & Wharf_Exchanges;

export function hasQueues(broker: HttpBroker): broker is QueueCapable {
  return (
    typeof broker.createQueue === 'function' &&
    typeof broker.receive === 'function' &&
    typeof broker.listQueues === 'function'
  );
}

export function hasExchanges(broker: HttpBroker): broker is ExchangeCapable {
  return (
    typeof broker.createExchange === 'function' &&
    typeof broker.listExchanges === 'function' &&
    typeof broker.bind === 'function'
  );
}
