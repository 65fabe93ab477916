// Invariant checks. A failed assertion is a bug in Wharf, never bad user input:
// user input is validated separately and rejected with INVALID_ARGUMENT.
import { WharfError } from './errors.js';

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new WharfError('INTERNAL', `invariant violated: ${message}`);
}
