// One delivery of a queue message, as handed to receive() and consume() callers. A class rather than
// an object literal with closures: at ~100k deliveries a second, three closures per message were a
// measurable share of the garbage. The receipt's parts are kept as numbers, so settling through the
// message itself never parses its receipt string.
import type { LogRecord } from '../../storage/index.js';
import { decodeInto } from '../message-codec.js';
import type { NackOptions, QueueMessage } from '../queue-types.js';
import type { Payload } from '../types.js';

/** Placeholder until decodeInto sets the headers (it always does): no object per message for it. */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** What a delivery settles through: the engine, by tracked key and delivery token. */
export interface DeliverySettler {
  ackDelivery(key: number, token: number, receipt: string): Promise<void>;
  nackDelivery(key: number, token: number, receipt: string, options: NackOptions | undefined): Promise<void>;
  extendDelivery(key: number, token: number, receipt: string, ms: number): Promise<void>;
}

export class Delivery implements QueueMessage {
  id = '';
  type = '';
  timestamp = 0;
  key: string | null = null;
  headers: Record<string, string> = NO_HEADERS;
  payload: Payload = null;
  // Set by decodeInto only when the record has them (declared, so no own undefined fields).
  declare priority?: number;
  declare groupId?: string;
  declare dedupId?: string;
  declare routingKey?: string;
  readonly receipt: string;
  readonly #settler: DeliverySettler;
  readonly #trackedKey: number;
  readonly #token: number;

  constructor(
    settler: DeliverySettler,
    rec: LogRecord,
    shareBytes: boolean,
    readonly queue: string,
    epoch: string,
    trackedKey: number,
    token: number,
    readonly deliveryCount: number,
    readonly firstDeliveredAt: number,
  ) {
    this.#settler = settler;
    this.#trackedKey = trackedKey;
    this.#token = token;
    this.receipt = `${epoch}:${trackedKey}:${token}`;
    decodeInto(rec, this, shareBytes);
  }

  ack(): Promise<void> {
    return this.#settler.ackDelivery(this.#trackedKey, this.#token, this.receipt);
  }

  nack(options?: NackOptions): Promise<void> {
    return this.#settler.nackDelivery(this.#trackedKey, this.#token, this.receipt, options);
  }

  extendVisibility(ms: number): Promise<void> {
    return this.#settler.extendDelivery(this.#trackedKey, this.#token, this.receipt, ms);
  }
}
