// Topics, queues and exchanges share one namespace with Kafka's topic-name rules.
import { WharfError } from './errors.js';

/** The longest name, in characters (Kafka's limit for a topic name). */
export const NAME_MAX_CHARS = 249;

export const NAME_PATTERN = new RegExp(`^[A-Za-z0-9._-]{1,${NAME_MAX_CHARS}}$`);

export function validateName(name: unknown, what = 'name'): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name === '.' || name === '..') {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `invalid ${what} ${JSON.stringify(name)}: use 1-${NAME_MAX_CHARS} characters from A-Z a-z 0-9 . _ - (not "." or "..")`,
    );
  }
  return name;
}

/** Names Wharf creates for itself (webhook delivery queues); users cannot create or delete them. */
export const RESERVED_NAME_PREFIX = '__wharf.';

export function rejectReservedName(name: string): void {
  if (typeof name === 'string' && name.startsWith(RESERVED_NAME_PREFIX)) {
    throw new WharfError(
      'FORBIDDEN',
      `${JSON.stringify(name)} is reserved: names starting with ${RESERVED_NAME_PREFIX} belong to Wharf itself; pick another name`,
    );
  }
}
