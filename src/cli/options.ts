// Parsers for option values, so a bad value fails with INVALID_ARGUMENT before anything is sent.
import { WharfError } from '../common/index.js';

export function intOption(name: string, min = 0): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
      throw new WharfError('INVALID_ARGUMENT', `${name} ${JSON.stringify(value)} is not a whole number >= ${min}`);
    }
    return Number(value);
  };
}

export function jsonObjectOption(name: string): (value: string) => Record<string, unknown> {
  return (value) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `${name} is not valid JSON; pass an object like '{"retentionMs": 60000}'`,
      );
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new WharfError('INVALID_ARGUMENT', `${name} must be a JSON object`);
    }
    return parsed as Record<string, unknown>;
  };
}

/** Repeatable `--header k=v`. */
export function collectHeader(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new WharfError('INVALID_ARGUMENT', `header ${JSON.stringify(value)} is not key=value`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}
