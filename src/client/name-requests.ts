// Requests that name a topic, queue or exchange, as the remote client sends them: RemoteWharf's
// admin calls and reads, and the flows' own reads (a reader's STATS to pin 'latest').
import { decodeJsonResult, encodeName, encodeNameOptions, type WireWriter } from '../protocol/index.js';
import type { ClientConnection } from './connection.js';

/** Encodes a request that names a topic, queue or exchange, with its options when given. */
export function nameEncoder(name: string, options: unknown): (w: WireWriter) => void {
  return options === undefined ? (w) => encodeName(w, { name }) : (w) => encodeNameOptions(w, { name, options });
}

/** A read by name (describe, stats, bindings): safe to send again after a reconnect. */
export function readByName<T>(conn: ClientConnection, op: number, name: string): Promise<T> {
  return conn.request(op, nameEncoder(name, undefined), (_op, r) => decodeJsonResult(r) as T, true);
}
