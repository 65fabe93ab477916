// The routing trie of topic exchanges: AMQP patterns ('.'-separated words, `*` = exactly one word,
// `#` = zero or more words) indexed word by word, so routing a key costs about the key's length
// times the wildcard branches on its path, not one comparison per binding.
//
// Word rules (as RabbitMQ): the empty string has zero words; otherwise the key splits on every '.',
// so "a..b" has an empty middle word and ".a" an empty first word; `*` matches an empty word too.
// A word that merely contains '*' or '#' ("a*") is a literal.

export function splitWords(keyOrPattern: string): string[] {
  return keyOrPattern === '' ? [] : keyOrPattern.split('.');
}

class TrieNode<V> {
  readonly children = new Map<string, TrieNode<V>>();
  star: TrieNode<V> | null = null;
  hash: TrieNode<V> | null = null;
  /** Values whose pattern ends here. */
  readonly values = new Set<V>();
  constructor(readonly id: number) {}

  get isEmpty(): boolean {
    return this.children.size === 0 && this.star === null && this.hash === null && this.values.size === 0;
  }
}

export class TopicTrie<V> {
  private nextId = 0;
  private readonly root = new TrieNode<V>(this.nextId++);
  private count = 0;

  /** Number of (pattern, value) pairs held. */
  get size(): number {
    return this.count;
  }

  /** Adds value under pattern; adding the same pair twice keeps one. */
  add(pattern: string, value: V): void {
    let node = this.root;
    for (const word of splitWords(pattern)) node = this.child(node, word, true)!;
    if (!node.values.has(value)) {
      node.values.add(value);
      this.count++;
    }
  }

  /** Removes value from pattern; prunes nodes left empty. Returns whether it was there. */
  remove(pattern: string, value: V): boolean {
    const path: Array<{ parent: TrieNode<V>; word: string; node: TrieNode<V> }> = [];
    let node = this.root;
    for (const word of splitWords(pattern)) {
      const next = this.child(node, word, false);
      if (next === null) return false;
      path.push({ parent: node, word, node: next });
      node = next;
    }
    if (!node.values.delete(value)) return false;
    this.count--;
    for (let i = path.length - 1; i >= 0 && path[i].node.isEmpty; i--) {
      const { parent, word } = path[i];
      if (word === '*') parent.star = null;
      else if (word === '#') parent.hash = null;
      else parent.children.delete(word);
    }
    return true;
  }

  /** Every value whose pattern matches routingKey, each once. */
  match(routingKey: string, out: Set<V> = new Set()): Set<V> {
    const words = splitWords(routingKey);
    // (node, position) pairs already explored: consecutive `#`s ("#.#") would otherwise branch
    // exponentially; with the memo the walk is bounded by nodes x (words + 1). Only nodes below a
    // `#` can be reached twice (a trie path is unique, and only `#` varies the position), so the
    // memo starts at the first `#` and keys without one cost no allocation.
    let seen: Set<number> | null = null;
    const stride = words.length + 1;
    const visit = (node: TrieNode<V>, at: number, belowHash: boolean): void => {
      if (belowHash) {
        const memoKey = node.id * stride + at;
        seen ??= new Set<number>();
        if (seen.has(memoKey)) return;
        seen.add(memoKey);
      }
      if (node.hash !== null) {
        // `#` swallows zero or more words: try continuing after it at every later position.
        for (let j = at; j <= words.length; j++) visit(node.hash, j, true);
      }
      if (at === words.length) {
        for (const v of node.values) out.add(v);
        return;
      }
      const literal = node.children.get(words[at]);
      if (literal !== undefined) visit(literal, at + 1, belowHash);
      if (node.star !== null) visit(node.star, at + 1, belowHash);
    };
    visit(this.root, 0, false);
    return out;
  }

  private child(node: TrieNode<V>, word: string, create: boolean): TrieNode<V> | null {
    if (word === '*') {
      if (node.star === null && create) node.star = new TrieNode<V>(this.nextId++);
      return node.star;
    }
    if (word === '#') {
      if (node.hash === null && create) node.hash = new TrieNode<V>(this.nextId++);
      return node.hash;
    }
    let next = node.children.get(word) ?? null;
    if (next === null && create) {
      next = new TrieNode<V>(this.nextId++);
      node.children.set(word, next);
    }
    return next;
  }
}
