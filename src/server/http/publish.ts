// POST .../messages bodies: one message, or { messages: [...] } for a batch that is stored together.
import type { PublishResult } from '../../broker/index.js';
import type { HttpBroker } from './broker-port.js';
import { fromJsonInput, type JsonMessageInput } from './message-json.js';

export type PublishBody = JsonMessageInput | { messages: JsonMessageInput[] };

export async function publishBody(
  broker: HttpBroker,
  name: string,
  body: PublishBody,
): Promise<PublishResult | { results: PublishResult[] }> {
  if ('messages' in body && Array.isArray(body.messages)) {
    const results = await broker.publish(name, body.messages.map(fromJsonInput));
    return { results };
  }
  return broker.publish(name, fromJsonInput(body as JsonMessageInput));
}
