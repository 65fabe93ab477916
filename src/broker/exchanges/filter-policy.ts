// SNS-style filter policies on bindings: validated once at bind time into a compiled predicate,
// then evaluated per routed message against its headers (string values).
// Semantics (as SNS): every policy key must match; within a key, any one condition suffices.
// Conditions other than { exists: false } and anything-but need the header to be present.
import { EXCHANGE_LIMITS, WharfError } from '../../common/index.js';
import type { FilterCondition, FilterPolicy } from '../exchange-types.js';

export type HeaderPredicate = (headers: Record<string, string>) => boolean;
type ValuePredicate = (value: string | undefined) => boolean;

/** Most keys in one policy and most conditions across them (SNS allows 150 combinations). */
export const FILTER_POLICY_LIMITS = {
  maxKeys: EXCHANGE_LIMITS.maxFilterPolicyKeys,
  maxConditions: EXCHANGE_LIMITS.maxFilterPolicyConditions,
} as const;

const NUMERIC_OPS = new Set(['=', '<', '<=', '>', '>=']);

function invalid(message: string): WharfError {
  return new WharfError('INVALID_ARGUMENT', `invalid filter policy: ${message}`);
}

function asNumber(value: string | undefined): number | null {
  if (value === undefined || value.trim() === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function compileNumeric(spec: unknown): ValuePredicate {
  if (!Array.isArray(spec) || spec.length === 0 || spec.length % 2 !== 0 || spec.length > 4) {
    throw invalid(`numeric takes [op, n] or [op, n, op, n], e.g. ['>=', 10, '<', 20]; got ${JSON.stringify(spec)}`);
  }
  const tests: Array<(n: number) => boolean> = [];
  for (let i = 0; i < spec.length; i += 2) {
    const op = spec[i] as unknown;
    const bound = spec[i + 1] as unknown;
    if (typeof op !== 'string' || !NUMERIC_OPS.has(op) || typeof bound !== 'number' || !Number.isFinite(bound)) {
      throw invalid(`numeric operators are = < <= > >= followed by a finite number; got ${JSON.stringify(spec)}`);
    }
    if (op === '=' && spec.length > 2) throw invalid(`numeric '=' stands alone; got ${JSON.stringify(spec)}`);
    if (op === '=') tests.push((n) => n === bound);
    else if (op === '<') tests.push((n) => n < bound);
    else if (op === '<=') tests.push((n) => n <= bound);
    else if (op === '>') tests.push((n) => n > bound);
    else tests.push((n) => n >= bound);
  }
  return (value) => {
    const n = asNumber(value);
    return n !== null && tests.every((t) => t(n));
  };
}

function compileExact(expected: string | number): ValuePredicate {
  if (typeof expected === 'number') return (value) => asNumber(value) === expected;
  return (value) => value === expected;
}

function compileAnythingBut(spec: unknown): ValuePredicate {
  if (spec !== null && typeof spec === 'object' && !Array.isArray(spec)) {
    const prefix = (spec as { prefix?: unknown }).prefix;
    if (typeof prefix !== 'string' || Object.keys(spec).length !== 1)
      throw invalid(`anything-but takes a value, a list, or { prefix }`);
    return (value) => value !== undefined && !value.startsWith(prefix);
  }
  const list = Array.isArray(spec) ? spec : [spec];
  if (list.length === 0 || list.some((v) => typeof v !== 'string' && typeof v !== 'number')) {
    throw invalid(`anything-but takes strings or numbers; got ${JSON.stringify(spec)}`);
  }
  const excluded = list.map((v) => compileExact(v as string | number));
  // As SNS: a missing header has no value to differ, so it does not match anything-but.
  return (value) => value !== undefined && !excluded.some((p) => p(value));
}

function compileCondition(condition: FilterCondition): ValuePredicate {
  if (typeof condition === 'string' || typeof condition === 'number') return compileExact(condition);
  if (condition === null || typeof condition !== 'object' || Array.isArray(condition)) {
    throw invalid(`a condition is a string, a number or an object; got ${JSON.stringify(condition)}`);
  }
  const keys = Object.keys(condition);
  if (keys.length !== 1) throw invalid(`a condition object has exactly one operator; got ${JSON.stringify(condition)}`);
  const c = condition as Record<string, unknown>;
  switch (keys[0]) {
    case 'anything-but':
      return compileAnythingBut(c['anything-but']);
    case 'numeric':
      return compileNumeric(c.numeric);
    case 'prefix': {
      const prefix = c.prefix;
      if (typeof prefix !== 'string') throw invalid('prefix takes a string');
      return (value) => value !== undefined && value.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = c.suffix;
      if (typeof suffix !== 'string') throw invalid('suffix takes a string');
      return (value) => value !== undefined && value.endsWith(suffix);
    }
    case 'exists': {
      const wanted = c.exists;
      if (typeof wanted !== 'boolean') throw invalid('exists takes true or false');
      return (value) => (value !== undefined) === wanted;
    }
    default:
      throw invalid(`unknown operator ${JSON.stringify(keys[0])}; use anything-but, numeric, prefix, suffix or exists`);
  }
}

/** Validates a policy and returns its predicate; INVALID_ARGUMENT says what is wrong. */
export function compileFilterPolicy(policy: FilterPolicy): HeaderPredicate {
  if (policy === null || typeof policy !== 'object' || Array.isArray(policy))
    throw invalid('a policy is an object of header name -> conditions');
  const entries = Object.entries(policy);
  if (entries.length === 0) throw invalid('a policy needs at least one header');
  if (entries.length > FILTER_POLICY_LIMITS.maxKeys)
    throw invalid(`at most ${FILTER_POLICY_LIMITS.maxKeys} headers per policy`);
  let conditionCount = 0;
  const compiled: Array<[string, ValuePredicate[]]> = entries.map(([header, spec]) => {
    const list = Array.isArray(spec) ? spec : [spec];
    if (list.length === 0) throw invalid(`header ${JSON.stringify(header)} has no conditions`);
    conditionCount += list.length;
    return [header, list.map(compileCondition)];
  });
  if (conditionCount > FILTER_POLICY_LIMITS.maxConditions)
    throw invalid(`at most ${FILTER_POLICY_LIMITS.maxConditions} conditions per policy`);
  return (headers) => {
    for (const [header, predicates] of compiled) {
      const value = Object.hasOwn(headers, header) ? headers[header] : undefined;
      if (!predicates.some((p) => p(value))) return false;
    }
    return true;
  };
}
