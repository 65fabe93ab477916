// One bound for every publish that waits for other publishes in flight whose messages its batch
// repeats (an idempotent producer's sequences, dedupIds, a queue's content keys): such a batch
// stores nothing until those originals have settled, then is judged again, so it is all or nothing.
import { WharfError } from '../common/index.js';

/**
 * Most times one publish waits. It waits once for the originals it repeats, and again only for
 * publishes of its keys that started while it waited (concurrent repeats of an original that
 * failed): a few at most, unless those keep failing.
 */
export const MAX_IN_FLIGHT_WAITS = 16;

/**
 * Waits until `originals` have settled, stored or failed (their own callers get their errors).
 * Refused with CONFLICT, nothing of the batch stored, once the batch has waited MAX_IN_FLIGHT_WAITS
 * times (`round` counts them): `repeats` says what the batch repeats, as the error's message begins.
 */
export async function waitForOriginals<T>(
  originals: Array<Promise<T>>,
  round: number,
  repeats: string,
): Promise<Array<PromiseSettledResult<T>>> {
  if (round >= MAX_IN_FLIGHT_WAITS) {
    throw new WharfError(
      'CONFLICT',
      `${repeats} that other publishes kept claiming and failing to store (${MAX_IN_FLIGHT_WAITS} waits); send it again once those have settled`,
    );
  }
  return Promise.allSettled(originals);
}
