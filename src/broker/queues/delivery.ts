// One delivery of a queue message, as handed to receive() and consume() callers. A class rather than
// an object literal with closures: at ~100k deliveries a second, three closures per message were a
// measurable share of the garbage. The receipt's parts are kept as numbers, so settling through the
// message itself never parses its receipt string.
//
// A delivery is leased with its stored record and decoded into its message fields by decode()
// before any caller sees it; a server that writes the record to the wire as stored
// (Broker.consumeStored) never decodes it: no strings, header object or payload per message.
import type { LogRecord } from '../../storage/index.js';
import { WharfError } from '../../common/index.js';
import { decodeInto } from '../message-codec.js';
import type { NackOptions, QueueMessage, StoredQueueDelivery } from '../queue-types.js';
import type { Payload } from '../types.js';

/** Placeholder until decodeInto sets the headers (it always does): no object per message for it. */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** What a delivery settles through: the engine, by tracked key and delivery token. */
export interface DeliverySettler {
  ackDelivery(key: number, token: number, receipt: string): Promise<void>;
  nackDelivery(key: number, token: number, receipt: string, options: NackOptions | undefined): Promise<void>;
  extendDelivery(key: number, token: number, receipt: string, ms: number): Promise<void>;
  /** Whether this lease is still the message's current one (not expired, settled or released since). */
  holdsLease(key: number, token: number): boolean;
}

export class Delivery implements QueueMessage, StoredQueueDelivery {
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
  readonly #epoch: string;
  /** The stored record until decode() (null after: the message fields hold it). */
  #record: LogRecord | null;

  constructor(
    settler: DeliverySettler,
    rec: LogRecord,
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
    this.#epoch = epoch;
    this.receipt = `${epoch}:${trackedKey}:${token}`;
    this.#record = rec;
  }

  /**
   * Fills the message fields from the stored record (once; the record is let go). `shareBytes`:
   * a byte payload may stay a view of the read buffer (see decodePayload).
   */
  decode(shareBytes: boolean): this {
    const rec = this.#record;
    if (rec !== null) {
      decodeInto(rec, this, shareBytes);
      this.#record = null;
    }
    return this;
  }

  get receiptEpoch(): string {
    return this.#epoch;
  }

  get receiptKey(): number {
    return this.#trackedKey;
  }

  get receiptToken(): number {
    return this.#token;
  }

  releaseRecord(): void {
    this.#record = null;
  }

  /** The stored record of a delivery never decoded (Broker.consumeStored). */
  get record(): LogRecord {
    const rec = this.#record;
    if (rec === null)
      throw new WharfError('INTERNAL', 'invariant violated: the delivery is decoded or its record was released');
    return rec;
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
  /** Whether this delivery's lease is still current: a consumer hands a prefetched one to its handler only then. */
  holdsLease(): boolean {
    return this.#settler.holdsLease(this.#trackedKey, this.#token);
  }
}
