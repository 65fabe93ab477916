// SNS-style filter policies on bindings: exact values, anything-but, numeric ranges, prefixes, exists.
import { describe, expect, it } from 'vitest';
import { compileFilterPolicy } from '../../src/broker/exchanges/filter-policy.js';
import type { FilterPolicy } from '../../src/broker/exchange-types.js';

const check = (policy: FilterPolicy, headers: Record<string, string>): boolean => compileFilterPolicy(policy)(headers);

describe('binding filter policies', () => {
  it('matches exact strings, any of a list', () => {
    expect(check({ region: 'eu' }, { region: 'eu' })).toBe(true);
    expect(check({ region: 'eu' }, { region: 'us' })).toBe(false);
    expect(check({ region: ['eu', 'us'] }, { region: 'us' })).toBe(true);
    expect(check({ region: 'eu' }, {})).toBe(false);
  });

  it('requires every key to match', () => {
    const policy: FilterPolicy = { region: 'eu', tier: ['gold', 'silver'] };
    expect(check(policy, { region: 'eu', tier: 'gold' })).toBe(true);
    expect(check(policy, { region: 'eu', tier: 'bronze' })).toBe(false);
    expect(check(policy, { tier: 'gold' })).toBe(false);
  });

  it('matches numbers by numeric value', () => {
    expect(check({ amount: 10 }, { amount: '10.0' })).toBe(true);
    expect(check({ amount: 10 }, { amount: 'ten' })).toBe(false);
  });

  it('matches numeric ranges', () => {
    const policy: FilterPolicy = { amount: { numeric: ['>=', 10, '<', 20] } };
    expect(check(policy, { amount: '10' })).toBe(true);
    expect(check(policy, { amount: '19.99' })).toBe(true);
    expect(check(policy, { amount: '20' })).toBe(false);
    expect(check(policy, { amount: '9' })).toBe(false);
    expect(check(policy, { amount: 'abc' })).toBe(false);
    expect(check(policy, { amount: '' })).toBe(false);
    expect(check(policy, {})).toBe(false);
    expect(check({ n: { numeric: ['=', 5] } }, { n: '5' })).toBe(true);
    expect(check({ n: { numeric: ['>', 5] } }, { n: '5' })).toBe(false);
    expect(check({ n: { numeric: ['<=', 5] } }, { n: '5' })).toBe(true);
  });

  it('matches anything-but a value, a list, or a prefix; a missing header does not match', () => {
    expect(check({ region: { 'anything-but': 'eu' } }, { region: 'us' })).toBe(true);
    expect(check({ region: { 'anything-but': 'eu' } }, { region: 'eu' })).toBe(false);
    expect(check({ region: { 'anything-but': ['eu', 'us'] } }, { region: 'ap' })).toBe(true);
    expect(check({ region: { 'anything-but': ['eu', 'us'] } }, { region: 'us' })).toBe(false);
    expect(check({ region: { 'anything-but': { prefix: 'eu-' } } }, { region: 'eu-west' })).toBe(false);
    expect(check({ region: { 'anything-but': { prefix: 'eu-' } } }, { region: 'us-east' })).toBe(true);
    expect(check({ n: { 'anything-but': 5 } }, { n: '5.0' })).toBe(false);
    expect(check({ region: { 'anything-but': 'eu' } }, {})).toBe(false);
  });

  it('matches prefixes and suffixes', () => {
    expect(check({ region: { prefix: 'eu-' } }, { region: 'eu-west-1' })).toBe(true);
    expect(check({ region: { prefix: 'eu-' } }, { region: 'us-east-1' })).toBe(false);
    expect(check({ file: { suffix: '.png' } }, { file: 'a.png' })).toBe(true);
    expect(check({ file: { suffix: '.png' } }, { file: 'a.jpg' })).toBe(false);
  });

  it('matches on presence or absence with exists', () => {
    expect(check({ trace: { exists: true } }, { trace: '' })).toBe(true);
    expect(check({ trace: { exists: true } }, {})).toBe(false);
    expect(check({ trace: { exists: false } }, {})).toBe(true);
    expect(check({ trace: { exists: false } }, { trace: 'x' })).toBe(false);
  });

  it('does not read inherited properties as headers', () => {
    expect(check({ toString: { exists: true } }, {})).toBe(false);
  });

  it.each([
    [{}, 'at least one header'],
    [{ a: [] }, 'no conditions'],
    [{ a: { numeric: ['>', 'x'] } }, 'numeric'],
    [{ a: { numeric: ['>=', 1, '<'] } }, 'numeric'],
    [{ a: { numeric: ['=', 1, '<', 3] } }, 'stands alone'],
    [{ a: { bogus: 1 } }, 'unknown operator'],
    [{ a: { prefix: 'x', suffix: 'y' } }, 'exactly one operator'],
    [{ a: { exists: 'yes' } }, 'exists'],
    [{ a: { 'anything-but': [] } }, 'anything-but'],
    [{ a: [null] }, 'a condition is'],
  ])('rejects the malformed policy %j with INVALID_ARGUMENT', (policy, fragment) => {
    expect(() => compileFilterPolicy(policy as unknown as FilterPolicy)).toThrowError(fragment);
    try {
      compileFilterPolicy(policy as unknown as FilterPolicy);
    } catch (err) {
      expect((err as { code: string }).code).toBe('INVALID_ARGUMENT');
    }
  });
});
