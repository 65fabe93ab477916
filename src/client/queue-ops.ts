// Queue receive and settlement by receipt for the remote client: a delivered record becomes a
// QueueMessage whose ack / nack / extendVisibility are requests on the connection.
import { randomBytes } from 'node:crypto';
import {
  DeliveryFacts,
  MIN_PROTOCOL_VERSION,
  OP,
  RELEASE_VERSION,
  decodeDeliveryInto,
  decodeEmpty,
  encodeExtend,
  encodeNack,
  encodeReceipt,
  encodeReceive,
  type NackOptions,
  type Payload,
  type QueueMessage,
  type ReceiveOptions,
  type WireReader,
} from '../protocol/index.js';
import { checkOptionObject } from '../common/index.js';
import type { ClientConnection } from './connection.js';

/**
 * A queue message received over the wire. A class, not a literal with three closures: at tens of
 * thousands of deliveries a second the closures were a visible share of the garbage.
 */
class RemoteQueueMessage implements QueueMessage {
  id = '';
  type = '';
  timestamp = 0;
  key: string | null = null;
  headers: Record<string, string> = {};
  payload: Payload = null;
  // Set by decodeDeliveryInto only when the delivery has them (declared, so no own undefined fields).
  declare priority?: number;
  declare groupId?: string;
  declare dedupId?: string;
  declare routingKey?: string;
  deliveryCount = 0;
  receipt = '';
  firstDeliveredAt = 0;
  readonly #settler: QueueSettler;

  constructor(
    settler: QueueSettler,
    readonly queue: string,
  ) {
    this.#settler = settler;
  }

  ack(): Promise<void> {
    return this.#settler.ack(this.queue, this.receipt);
  }

  nack(options?: NackOptions): Promise<void> {
    return this.#settler.nack(this.queue, this.receipt, options);
  }

  extendVisibility(ms: number): Promise<void> {
    return this.#settler.extendVisibility(this.queue, this.receipt, ms);
  }
}

export class QueueSettler {
  constructor(private readonly conn: ClientConnection) {}

  /**
   * One long poll. Its attempt id goes with it each time it is sent (a server of protocol version 4
   * or later answers a RECEIVE sent again after a reconnect with the same messages, if its answer
   * was lost, instead of leaving them leased until their visibility timeout).
   */
  async receive(queue: string, options: ReceiveOptions = {}): Promise<QueueMessage[]> {
    const attemptId = randomBytes(12).toString('base64url');
    return this.conn.request(
      OP.RECEIVE,
      (w) => encodeReceive(w, queue, options, this.conn.hello?.version ?? MIN_PROTOCOL_VERSION, attemptId),
      (_op, r) => this.decodeReceived(queue, r),
    );
  }

  /** RECEIVED: count:u16 delivery{count}. */
  private decodeReceived(queue: string, r: WireReader): QueueMessage[] {
    const facts = new DeliveryFacts();
    const n = r.u16('count');
    const out = new Array<QueueMessage>(n);
    for (let i = 0; i < n; i++) {
      const m = decodeDeliveryInto(r, this.newMessage(queue), facts);
      m.deliveryCount = facts.deliveryCount;
      m.receipt = facts.receipt;
      m.firstDeliveredAt = facts.firstDeliveredAt;
      out[i] = m;
    }
    r.done();
    return out;
  }

  ack(queue: string, receipt: string): Promise<void> {
    return this.conn.request(
      OP.ACK,
      (w) => encodeReceipt(w, { queue, receipt }),
      (_op, r) => decodeEmpty(r),
      false,
    );
  }

  async nack(queue: string, receipt: string, options: NackOptions = {}): Promise<void> {
    // NACK requires a JSON object (null would be the server's PROTOCOL_ERROR): refused here as embedded.
    checkOptionObject(options, 'nack option', '{ delayMs: 1000 }');
    return this.conn.request(
      OP.NACK,
      (w) => encodeNack(w, { queue, receipt }, options),
      (_op, r) => decodeEmpty(r),
      false,
    );
  }

  /**
   * Hands a leased message back: visible again at once, its delivery not counted (RELEASE, version
   * 6), as Broker.releaseReceipt does embedded. A server of an older version has no RELEASE: there
   * the message is nacked with no delay, which counts the delivery. Chosen when the request is
   * written, by the version of the connection it goes out on.
   */
  release(queue: string, receipt: string): Promise<void> {
    const releases = (): boolean => (this.conn.hello?.version ?? MIN_PROTOCOL_VERSION) >= RELEASE_VERSION;
    return this.conn.request(
      () => (releases() ? OP.RELEASE : OP.NACK),
      (w) => (releases() ? encodeReceipt(w, { queue, receipt }) : encodeNack(w, { queue, receipt }, { delayMs: 0 })),
      (_op, r) => decodeEmpty(r),
      false,
    );
  }

  extendVisibility(queue: string, receipt: string, ms: number): Promise<void> {
    return this.conn.request(
      OP.EXTEND,
      (w) => encodeExtend(w, { queue, receipt }, ms),
      (_op, r) => decodeEmpty(r),
      false,
    );
  }

  /** An empty message of `queue` for decodeDeliveryInto; settling goes through this settler. */
  newMessage(queue: string): QueueMessage {
    return new RemoteQueueMessage(this, queue);
  }
}
