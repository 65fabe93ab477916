// Row <-> message: messages are stored as JSON text; byte payloads as base64 so they survive the round trip.
import { randomUUID } from 'node:crypto';
import { WharfError } from '../../common/index.js';
import type { MessageInput } from '../../broker/index.js';
import type { OutboxMessage } from './types.js';

interface StoredMessage extends Omit<MessageInput, 'payload'> {
  payload?: MessageInput['payload'];
  payloadBase64?: string;
}

/** Validates an outbox message and returns [destination, JSON text]. Gives it a stable id now, so a re-published row keeps it. */
export function encodeOutboxMessage(message: OutboxMessage): [string, string] {
  if (message === null || typeof message !== 'object') {
    throw new WharfError('INVALID_ARGUMENT', 'outbox.add needs a message object like { to: "orders", payload: {...} }');
  }
  const { to, ...rest } = message;
  if (typeof to !== 'string' || to.length === 0) {
    throw new WharfError('INVALID_ARGUMENT', 'outbox message needs "to": the topic, queue or exchange to publish to');
  }
  const stored: StoredMessage = { ...rest, id: rest.id ?? randomUUID() };
  if (rest.payload instanceof Uint8Array) {
    delete stored.payload;
    stored.payloadBase64 = Buffer.from(rest.payload).toString('base64');
  }
  return [to, JSON.stringify(stored)];
}

export function decodeOutboxMessage(json: string | object): MessageInput {
  const stored = (typeof json === 'string' ? JSON.parse(json) : json) as StoredMessage;
  const { payloadBase64, ...rest } = stored;
  if (payloadBase64 !== undefined) return { ...rest, payload: new Uint8Array(Buffer.from(payloadBase64, 'base64')) };
  return rest;
}
