// Parsers for option values. A bad value is a usage error: commander reports it as it reports an
// unknown option (`error: option '--count <n>' argument 'abc' is invalid. …`, exit 2), before
// anything is sent.
import { InvalidArgumentError } from 'commander';
import { parseStartPosition, type StartPosition } from '../broker/index.js';

export function intOption(name: string, min = 0): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
      throw new InvalidArgumentError(`${name} takes a whole number >= ${min}`);
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
      throw new InvalidArgumentError(`${name} is not valid JSON; pass an object like '{"retentionMs": 60000}'`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new InvalidArgumentError(`${name} must be a JSON object, like '{"retentionMs": 60000}'`);
    }
    return parsed as Record<string, unknown>;
  };
}

/** Repeatable `--header k=v`. */
export function collectHeader(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('A header is key=value, like --header tenant=acme');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** `--from earliest | latest | <offset> | ts:<ms since epoch>`. */
export function startPositionOption(value: string): StartPosition {
  const position = parseStartPosition(value);
  if (position === null)
    throw new InvalidArgumentError('--from takes earliest, latest, an offset, or ts:<ms since epoch>');
  return position;
}
