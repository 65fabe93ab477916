// How messages look as JSON over HTTP: JSON payloads as-is, byte payloads as base64 in `payloadBase64`
// (the same shape the webhook pusher POSTs), so a byte payload survives a JSON round trip.
import type { MessageInput, Message, Payload, JsonValue } from '../../broker/index.js';
import { WharfError } from '../../common/index.js';

export type JsonMessageInput = Omit<MessageInput, 'payload'> & { payload?: JsonValue; payloadBase64?: string };

/** Standard base64 with its padding: Buffer.from would skip any other character without a word. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function fromJsonInput(input: JsonMessageInput): MessageInput {
  const { payloadBase64, ...rest } = input;
  if (payloadBase64 === undefined) return rest;
  if (rest.payload !== undefined) {
    throw new WharfError('INVALID_ARGUMENT', 'a message has both payload and payloadBase64; send one of them');
  }
  if (typeof payloadBase64 !== 'string' || !BASE64.test(payloadBase64)) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      'payloadBase64 is not standard base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters)',
    );
  }
  return { ...rest, payload: new Uint8Array(Buffer.from(payloadBase64, 'base64')) };
}

/**
 * Delivered message (topic or queue) to JSON; drops the settle methods a QueueMessage carries and a
 * topic message's grant (it fences a transaction in the subscriber's own process: nothing to HTTP).
 */
export function toJsonMessage(m: Message & Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v === 'function' || k === 'payload' || k === 'grant') continue;
    out[k] = v;
  }
  Object.assign(out, payloadToJson(m.payload));
  return out;
}

export function payloadToJson(payload: Payload): { payload: JsonValue } | { payloadBase64: string } {
  if (payload instanceof Uint8Array) return { payloadBase64: Buffer.from(payload).toString('base64') };
  return { payload };
}
