// Options objects, from callers and from the wire: a plain object holding only the fields its API
// knows. A misspelt option is refused, not ignored: `{ visibilityTimeout: 30000 }` quietly meaning
// the default 30 s would be found in production, and an unknown field would be stored with the
// queue's options and shown back as if it meant something.
import { WharfError } from './errors.js';

/** INVALID_ARGUMENT unless `o` is a plain object (not null, not an array) with only `known` fields. */
export function checkOptionFields(o: unknown, known: readonly string[], what: string, example: string): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new WharfError('INVALID_ARGUMENT', `${what} must be an object like ${example}, not ${o === null ? 'null' : Array.isArray(o) ? 'an array' : typeof o}`);
  }
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new WharfError('INVALID_ARGUMENT', `unknown ${what} field ${JSON.stringify(k)}; the fields are ${known.join(', ')}`);
  }
}

/** The `known` fields of a stored options object (one written before unknown fields were refused). */
export function knownOptionFields<T extends object>(o: T, known: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) if (known.includes(k)) out[k] = (o as Record<string, unknown>)[k];
  return out as T;
}
