// Options objects, from callers and from the wire: a plain object holding only the fields its API
// knows. A misspelt option is refused, not ignored: `{ visibilityTimeout: 30000 }` quietly meaning
// the default 30 s would be found in production, and an unknown field would be stored with the
// queue's options and shown back as if it meant something.
import { WharfError } from './errors.js';

/**
 * The field names of options type T, from a record naming each of them once. The record is typed
 * `Record<keyof T, true>`, so a field added to T but not here, or one T lacks, fails to compile.
 */
export function optionFields<T extends object>(fields: Record<keyof T, true>): ReadonlyArray<keyof T & string> {
  return Object.freeze(Object.keys(fields)) as ReadonlyArray<keyof T & string>;
}

/** INVALID_ARGUMENT unless `o` is a plain object (not null, not an array). */
export function checkOptionObject(o: unknown, what: string, example: string): asserts o is object {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `${what} must be an object like ${example}, not ${o === null ? 'null' : Array.isArray(o) ? 'an array' : typeof o}`,
    );
  }
}

/** INVALID_ARGUMENT unless `o` is a plain object (not null, not an array) with only `known` fields. */
export function checkOptionFields(o: unknown, known: readonly string[], what: string, example: string): void {
  checkOptionObject(o, what, example);
  for (const k of Object.keys(o)) {
    if (!known.includes(k))
      throw new WharfError(
        'INVALID_ARGUMENT',
        `unknown ${what} field ${JSON.stringify(k)}; the fields are ${known.join(', ')}`,
      );
  }
}

/** The `known` fields of a stored options object (one written before unknown fields were refused). */
export function knownOptionFields<T extends object>(o: T, known: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) if (known.includes(k)) out[k] = (o as Record<string, unknown>)[k];
  return out as T;
}
