// PUBLISH: a batch for one target, answered once the broker says it is durable.
import { OP, decodePublish, encodePublishOk, jsonTextAsValues, type MessageInput } from '../../../protocol/index.js';
import type { Connection, OpHandler } from '../connection.js';
import { storedSource } from '../stored-delivery.js';

/**
 * Readies decoded messages for the connection's broker. JSON payloads arrive as checked text
 * (JsonText), which the embedded Broker stores as it came; any other Wharf behind this server takes
 * JSON payloads as values.
 */
export function payloadsForBroker(conn: Connection, messages: MessageInput[]): void {
  if (storedSource(conn) === null) jsonTextAsValues(messages);
}

const publish: OpHandler = async (conn, r, id) => {
  const { target, messages } = decodePublish(r);
  payloadsForBroker(conn, messages);
  const results = await conn.broker.publish(target, messages);
  conn.send(OP.PUBLISH_OK, id, (w) => encodePublishOk(w, results, conn.protocolVersion));
};

export const publishHandlers: Array<[number, OpHandler]> = [[OP.PUBLISH, publish]];
