// Topics, queues and exchanges share one namespace with Kafka's topic-name rules.
import { WharfError } from './errors.js';

export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,249}$/;

export function validateName(name: unknown, what = 'name'): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name === '.' || name === '..') {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `invalid ${what} ${JSON.stringify(name)}: use 1-249 characters from A-Z a-z 0-9 . _ - (not "." or "..")`,
    );
  }
  return name;
}
