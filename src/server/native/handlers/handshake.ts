// HELLO and PING.
import { WharfError } from '../../../common/index.js';
import {
  MIN_PROTOCOL_VERSION,
  OP,
  decodeEmpty,
  decodeHello,
  encodeHelloOk,
  negotiateVersion,
} from '../../../protocol/index.js';
import type { OpHandler } from '../connection.js';

const hello: OpHandler = (conn, r, id) => {
  const h = decodeHello(r);
  if (conn.isHandshaken)
    throw new WharfError('PROTOCOL_ERROR', 'HELLO sent twice on one connection; send it once, first');
  const offered = conn.limits.maxProtocolVersion;
  const version = negotiateVersion(h.minVersion, h.maxVersion, MIN_PROTOCOL_VERSION, offered);
  if (version === null) {
    conn.fatal(
      new WharfError(
        'PROTOCOL_ERROR',
        `no common protocol version: client speaks ${h.minVersion}..${h.maxVersion}, server ${MIN_PROTOCOL_VERSION}..${offered}; upgrade the older side`,
      ),
    );
    return;
  }
  conn.markHandshaken(version);
  const l = conn.limits;
  conn.send(OP.HELLO_OK, id, (w) =>
    encodeHelloOk(w, {
      version,
      maxFrameBytes: l.maxFrameBytes,
      maxInFlight: l.maxInFlightRequests,
      idleTimeoutMs: l.idleTimeoutMs,
      serverName: 'wharf',
    }),
  );
};

const ping: OpHandler = (conn, r, id) => {
  decodeEmpty(r);
  conn.send(OP.PONG, id);
};

export const handshakeHandlers: Array<[number, OpHandler]> = [
  [OP.HELLO, hello],
  [OP.PING, ping],
];
