// What a publish through an exchange resolves with, per message, from what its targets said: a
// repeat of a dedupId that every target it reached already held resolves with the original's id.
import { assert } from '../../common/index.js';
import type { PublishResult } from '../types.js';

/**
 * `writes[k]`: the index, in the publish's messages, of each message the k-th write carried;
 * `said[k]`: that write's result per message, in the same order.
 *
 * A message is a duplicate when every target it was routed to said so (each held its dedupId within
 * its window, so nothing new was stored anywhere): it resolves with the id the first of those
 * targets holds it under, its `routed` count and `duplicate: true`. When only some targets held it
 * (one bound or created after the original), the others stored it now: it is not a duplicate and
 * resolves with its own id, which those targets hold. A message routed nowhere is never a duplicate.
 */
export function routedResults(
  ids: readonly string[],
  routed: readonly number[],
  writes: ReadonlyArray<readonly number[]>,
  said: ReadonlyArray<readonly PublishResult[] | null>,
): PublishResult[] {
  assert(writes.length === said.length, 'one result list per write of a routed publish');
  // Per message: undefined while no target has answered, null once one stored it, else the
  // original's id (from the first target that held it).
  const original = new Array<string | null | undefined>(ids.length);
  for (let k = 0; k < writes.length; k++) {
    const messages = writes[k];
    const results = said[k];
    assert(results !== null && results.length === messages.length, 'a target write has one result per message');
    for (let j = 0; j < messages.length; j++) {
      const i = messages[j];
      const r = results[j];
      if (r.duplicate !== true) original[i] = null;
      else if (original[i] === undefined) original[i] = r.id;
    }
  }
  return ids.map((id, i) => {
    const o = original[i];
    return o === null || o === undefined ? { id, routed: routed[i] } : { id: o, routed: routed[i], duplicate: true };
  });
}
