// The dispatch table: op code -> handler, assembled from one handler file per op family. The ops a
// server supports are exactly this table's keys.
import { WharfError } from '../../common/index.js';
import type { DispatchTable, OpHandler } from './connection.js';
import { adminHandlers } from './handlers/admin.js';
import { flowHandlers } from './handlers/flow.js';
import { handshakeHandlers } from './handlers/handshake.js';
import { publishHandlers } from './handlers/publish.js';
import { queueHandlers } from './handlers/queue.js';
import { transactionHandlers } from './handlers/transaction.js';

export function buildDispatchTable(): DispatchTable {
  const table = new Map<number, OpHandler>();
  for (const family of [
    handshakeHandlers,
    adminHandlers,
    publishHandlers,
    flowHandlers,
    queueHandlers,
    transactionHandlers,
  ]) {
    for (const [op, handler] of family) {
      if (table.has(op)) throw new WharfError('INTERNAL', `op 0x${op.toString(16)} has two handlers`);
      table.set(op, handler);
    }
  }
  return table;
}
