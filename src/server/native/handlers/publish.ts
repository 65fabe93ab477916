// PUBLISH: a batch for one target, answered once the broker says it is durable.
import { OP, decodePublish, encodePublishOk } from '../../../protocol/index.js';
import type { OpHandler } from '../connection.js';

const publish: OpHandler = async (conn, r, id) => {
  const { target, messages } = decodePublish(r);
  const results = await conn.broker.publish(target, messages);
  conn.send(OP.PUBLISH_OK, id, (w) => encodePublishOk(w, results));
};

export const publishHandlers: Array<[number, OpHandler]> = [[OP.PUBLISH, publish]];
