// The topic routing trie: AMQP wildcard rules, removal, and agreement with a reference matcher.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitWords, TopicTrie } from '../../src/broker/exchanges/topic-trie.js';

/** Straightforward recursive AMQP matcher used as the oracle. */
function referenceMatch(pattern: string[], key: string[]): boolean {
  if (pattern.length === 0) return key.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') {
    for (let skip = 0; skip <= key.length; skip++) if (referenceMatch(rest, key.slice(skip))) return true;
    return false;
  }
  if (key.length === 0) return false;
  if (head === '*' || head === key[0]) return referenceMatch(rest, key.slice(1));
  return false;
}

function matches(pattern: string, key: string): boolean {
  const trie = new TopicTrie<string>();
  trie.add(pattern, 'x');
  return trie.match(key).has('x');
}

describe('topic routing trie', () => {
  it.each([
    ['order.created', 'order.created', true],
    ['order.created', 'order.deleted', false],
    ['order.*', 'order.created', true],
    ['order.*', 'order', false],
    ['order.*', 'order.created.eu', false],
    ['*.created', 'order.created', true],
    ['*', 'a', true],
    ['*', '', false],
    ['*.*', 'a.b', true],
    ['*.*', 'a', false],
    ['#', '', true],
    ['#', 'a', true],
    ['#', 'a.b.c', true],
    ['order.#', 'order', true],
    ['order.#', 'order.created', true],
    ['order.#', 'order.created.eu', true],
    ['order.#', 'orders.created', false],
    ['#.created', 'created', true],
    ['#.created', 'order.created', true],
    ['#.created', 'a.b.created', true],
    ['#.created', 'a.created.b', false],
    ['a.#.b', 'a.b', true],
    ['a.#.b', 'a.x.b', true],
    ['a.#.b', 'a.x.y.z.b', true],
    ['a.#.b', 'a.x.y', false],
    ['a.#.b', 'b.a.b', false],
    ['#.#', '', true],
    ['#.#', 'a', true],
    ['#.#', 'a.b.c', true],
    ['#.*', '', false],
    ['#.*', 'a', true],
    ['*.#', 'a', true],
    ['*.#', '', false],
    ['a.*.#.c', 'a.b.c', true],
    ['a.*.#.c', 'a.c', false],
    ['#.a.#', 'x.a.y', true],
    ['#.a.#', 'a', true],
    ['#.a.#', 'x.y', false],
  ])('pattern %j vs key %j -> %s', (pattern, key, expected) => {
    expect(matches(pattern, key)).toBe(expected);
  });

  it('treats empty words as words: "a..b" has three, "*" matches the empty one', () => {
    expect(splitWords('a..b')).toEqual(['a', '', 'b']);
    expect(splitWords('')).toEqual([]);
    expect(matches('a.*.b', 'a..b')).toBe(true);
    expect(matches('a.b', 'a..b')).toBe(false);
    expect(matches('a..b', 'a..b')).toBe(true);
    expect(matches('*', '.')).toBe(false);
    expect(matches('*.*', '.')).toBe(true);
    expect(matches('a.#', 'a.')).toBe(true);
    expect(matches('', '')).toBe(true);
    expect(matches('', 'a')).toBe(false);
  });

  it('treats a word that only contains * or # as a literal', () => {
    expect(matches('a*', 'a*')).toBe(true);
    expect(matches('a*', 'ab')).toBe(false);
    expect(matches('x.#y', 'x.z')).toBe(false);
  });

  it('returns each matching value once, across many patterns', () => {
    const trie = new TopicTrie<string>();
    trie.add('order.*', 'q1');
    trie.add('order.#', 'q1');
    trie.add('#', 'q2');
    trie.add('order.created', 'q3');
    trie.add('user.*', 'q4');
    expect([...trie.match('order.created')].sort()).toEqual(['q1', 'q2', 'q3']);
    expect([...trie.match('user.x')].sort()).toEqual(['q2', 'q4']);
    expect(trie.size).toBe(5);
  });

  it('removes a pattern without disturbing the others and prunes empty branches', () => {
    const trie = new TopicTrie<string>();
    trie.add('a.*.c', 'x');
    trie.add('a.#', 'y');
    expect(trie.remove('a.*.c', 'x')).toBe(true);
    expect(trie.remove('a.*.c', 'x')).toBe(false);
    expect(trie.remove('never.added', 'x')).toBe(false);
    expect([...trie.match('a.b.c')]).toEqual(['y']);
    expect(trie.remove('a.#', 'y')).toBe(true);
    expect(trie.size).toBe(0);
    expect(trie.match('a.b.c').size).toBe(0);
  });

  it('stays polynomial on many consecutive # words', () => {
    const trie = new TopicTrie<string>();
    trie.add(Array.from({ length: 30 }, () => '#').join('.') + '.z', 'deep');
    const key = Array.from({ length: 60 }, (_, i) => `w${i}`).join('.');
    expect(trie.match(key).size).toBe(0);
    expect(trie.match(key + '.z').has('deep')).toBe(true);
  });

  it('agrees with the reference matcher on random patterns and keys', () => {
    const word = fc.constantFrom('a', 'b', 'c', '');
    const patWord = fc.constantFrom('a', 'b', '*', '#', '');
    fc.assert(
      fc.property(
        fc.array(fc.array(patWord, { maxLength: 5 }), { minLength: 1, maxLength: 6 }),
        fc.array(word, { maxLength: 6 }),
        (patterns, keyWords) => {
          // A pattern array [] is the empty pattern ''; [''] is one empty word, which joins to '' too,
          // so keep only patterns whose string form round-trips to the same words.
          const trie = new TopicTrie<number>();
          const usable = patterns.filter((p) => splitWords(p.join('.')).length === p.length);
          usable.forEach((p, i) => trie.add(p.join('.'), i));
          const key = keyWords.join('.');
          const kw = splitWords(key);
          const got = [...trie.match(key)].sort((x, y) => x - y);
          const want = usable.map((p, i) => (referenceMatch(p, kw) ? i : -1)).filter((i) => i >= 0);
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 500 },
    );
  });
});
