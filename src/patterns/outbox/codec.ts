// Row <-> message: messages are stored as JSON text; byte payloads as base64 so they survive the round trip.
// A message is checked at add() as the relay will publish it, so the broker never refuses a stored row
// for what is wrong with the message itself.
import { randomUUID } from 'node:crypto';
import { LIMITS, WharfError, validateName } from '../../common/index.js';
import { checkProducerFields, encodeMessage, type MessageInput } from '../../broker/index.js';
import type { OutboxMessage } from './types.js';

interface StoredMessage extends Omit<MessageInput, 'payload'> {
  payload?: MessageInput['payload'];
  payloadBase64?: string;
}

/** An outbox's maxMessageBytes option: a size some target can take. */
export function outboxMaxMessageBytes(value: number | undefined): number {
  const bytes = value ?? LIMITS.maxMessageBytes;
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > LIMITS.maxMessageBytesCeiling) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `outbox maxMessageBytes must be an integer from 1 to ${LIMITS.maxMessageBytesCeiling} (maxMessageBytesCeiling), got ${value}; use your targets' maxMessageBytes`,
    );
  }
  return bytes;
}

/**
 * Validates an outbox message and returns [destination, JSON text]. Gives it a stable id now, so a
 * re-published row keeps it. Refuses (INVALID_ARGUMENT, MESSAGE_TOO_LARGE) what publish would refuse
 * for the message alone, checking it after the JSON round trip: that is what the relay publishes.
 */
export function encodeOutboxMessage(message: OutboxMessage, maxMessageBytes: number): [string, string] {
  if (message === null || typeof message !== 'object') {
    throw new WharfError('INVALID_ARGUMENT', 'outbox.add needs a message object like { to: "orders", payload: {...} }');
  }
  const { to, ...rest } = message;
  if (typeof to !== 'string' || to.length === 0) {
    throw new WharfError('INVALID_ARGUMENT', 'outbox message needs "to": the topic, queue or exchange to publish to');
  }
  validateName(to, 'outbox message "to"');
  const stored: StoredMessage = { ...rest, id: rest.id ?? randomUUID() };
  if (rest.payload instanceof Uint8Array) {
    delete stored.payload;
    stored.payloadBase64 = Buffer.from(rest.payload).toString('base64');
  }
  let json: string;
  try {
    json = JSON.stringify(stored);
  } catch (err) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `outbox message cannot be stored as JSON (${(err as Error).message}); pass JSON values or a Uint8Array payload`,
    );
  }
  const published = decodeOutboxMessage(json);
  // The broker's own checks, not a copy of them: the relay's dedupId and producer stamp are its own.
  encodeMessage(published, Date.now(), maxMessageBytes, 'outbox message');
  checkProducerFields([published]);
  return [to, json];
}

export function decodeOutboxMessage(json: string | object): MessageInput {
  const stored = (typeof json === 'string' ? JSON.parse(json) : json) as StoredMessage;
  const { payloadBase64, ...rest } = stored;
  if (payloadBase64 !== undefined) return { ...rest, payload: new Uint8Array(Buffer.from(payloadBase64, 'base64')) };
  return rest;
}
