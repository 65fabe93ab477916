// idempotent(store, handler): a consumer wrapper that skips messages it has already processed, so a
// redelivery (at-least-once) has its effect once.
import { WharfError } from '../../common/index.js';
import type { ProcessedStore } from './types.js';

export interface IdempotentOptions<M> {
  /** Which key identifies "the same message" (default message.id; use dedupId or a business key if producers retry with new ids). */
  keyOf?: (message: M) => string;
  /** Called for each skipped duplicate. */
  onDuplicate?: (message: M) => void;
}

/** Wraps handler; the returned function fits broker.consume / broker.subscribe. */
export function idempotent<M extends { id: string }, Tx>(
  store: ProcessedStore<Tx>,
  handler: (message: M, tx: NoInfer<Tx>) => Promise<void> | void,
  options: IdempotentOptions<M> = {},
): (message: M) => Promise<void> {
  const keyOf = options.keyOf ?? ((m: M) => m.id);
  return async (message: M) => {
    const key = keyOf(message);
    if (typeof key !== 'string' || key.length === 0) {
      throw new WharfError('INVALID_ARGUMENT', 'idempotent consumer: keyOf(message) must return a non-empty string');
    }
    const ran = await store.runOnce(key, (tx) => handler(message, tx));
    if (!ran) options.onDuplicate?.(message);
  };
}
