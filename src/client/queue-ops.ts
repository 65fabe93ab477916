// Queue receive and settlement by receipt for the remote client: a delivered record becomes a
// QueueMessage whose ack / nack / extendVisibility are requests on the connection.
import {
  OP,
  decodeEmpty,
  decodeReceived,
  encodeExtend,
  encodeNack,
  encodeReceipt,
  encodeReceive,
  type DecodedDelivery,
  type NackOptions,
  type QueueMessage,
  type ReceiveOptions,
} from '../protocol/index.js';
import type { ClientConnection } from './connection.js';

export class QueueSettler {
  constructor(private readonly conn: ClientConnection) {}

  async receive(queue: string, options: ReceiveOptions = {}): Promise<QueueMessage[]> {
    const deliveries = await this.conn.request(OP.RECEIVE, (w) => encodeReceive(w, queue, options), (_op, r) => decodeReceived(r));
    return deliveries.map((d) => this.toQueueMessage(queue, d));
  }

  ack(queue: string, receipt: string): Promise<void> {
    return this.conn.request(OP.ACK, (w) => encodeReceipt(w, { queue, receipt }), (_op, r) => decodeEmpty(r), false);
  }

  nack(queue: string, receipt: string, options: NackOptions = {}): Promise<void> {
    return this.conn.request(OP.NACK, (w) => encodeNack(w, { queue, receipt }, options), (_op, r) => decodeEmpty(r), false);
  }

  extendVisibility(queue: string, receipt: string, ms: number): Promise<void> {
    return this.conn.request(OP.EXTEND, (w) => encodeExtend(w, { queue, receipt }, ms), (_op, r) => decodeEmpty(r), false);
  }

  toQueueMessage(queue: string, d: DecodedDelivery): QueueMessage {
    const receipt = d.receipt;
    const m = d.message as QueueMessage;
    m.queue = queue;
    m.deliveryCount = d.deliveryCount;
    m.receipt = receipt;
    m.firstDeliveredAt = d.firstDeliveredAt;
    m.ack = () => this.ack(queue, receipt);
    m.nack = (options?: NackOptions) => this.nack(queue, receipt, options);
    m.extendVisibility = (ms: number) => this.extendVisibility(queue, receipt, ms);
    return m;
  }
}
