// Maps and Sets for per-message add/delete churn. V8 allocates a Map's grown, shrunk or rehashed
// table in the generation of the table it replaces, so a long-lived Map whose entries come and go
// makes about 45 bytes of old-generation garbage per set/delete pair (a Set about 70), and only a
// full mark-compact frees it: at a paced 1,000 msgs/s that was a 5-12 ms pause every few seconds,
// per process. These wrappers replace their inner collection once it is empty, so a collection that
// empties between messages (a queue's leases at low rates, a connection's pending requests) keeps
// its table in the young generation, where a scavenge frees it for nothing. Under sustained load
// the collection seldom empties and behaves as a plain Map, with the garbage spread over more work.
// Iteration follows Map's rules except two: an iteration started before the collection emptied
// does not see entries added after it emptied (they go into the fresh inner collection), and
// clear() does not end an iteration in progress (it swaps in a fresh collection).

export class ChurnMap<K, V> implements Iterable<[K, V]> {
  #map = new Map<K, V>();

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): this {
    this.#map.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    const map = this.#map;
    if (!map.delete(key)) return false;
    if (map.size === 0) this.#map = new Map();
    return true;
  }

  clear(): void {
    this.#map = new Map();
  }

  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }

  forEach(fn: (value: V, key: K) => void): void {
    this.#map.forEach((value, key) => fn(value, key));
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}

export class ChurnSet<T> implements Iterable<T> {
  #set = new Set<T>();

  get size(): number {
    return this.#set.size;
  }

  has(value: T): boolean {
    return this.#set.has(value);
  }

  add(value: T): this {
    this.#set.add(value);
    return this;
  }

  delete(value: T): boolean {
    const set = this.#set;
    if (!set.delete(value)) return false;
    if (set.size === 0) this.#set = new Set();
    return true;
  }

  clear(): void {
    this.#set = new Set();
  }

  values(): IterableIterator<T> {
    return this.#set.values();
  }

  forEach(fn: (value: T) => void): void {
    this.#set.forEach((value) => fn(value));
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.#set.values();
  }
}
