// Due-time scheduling for many keys on one Clock timer: a binary min-heap with lazy deletion.
// Queues use it for lease expiries and delayed retries, so no message ever owns a timer.
import { ChurnMap, type Clock, type TimerHandle } from '../../common/index.js';

interface HeapItem<K> {
  dueMs: number;
  key: K;
  gen: number;
}

export class TimerHeap<K> {
  private heap: HeapItem<K>[] = [];
  private live = new ChurnMap<K, number>(); // key -> generation of its current schedule
  private gen = 0;
  private timer: TimerHandle | null = null;
  private timerDueMs = Infinity;

  /** onDue receives every key whose due time has passed, earliest first. */
  constructor(
    private readonly clock: Clock,
    private readonly onDue: (keys: K[]) => void,
  ) {}

  get size(): number {
    return this.live.size;
  }

  /** Schedules key at dueMs, replacing any earlier schedule of the same key. */
  schedule(key: K, dueMs: number): void {
    const gen = ++this.gen;
    this.live.set(key, gen);
    this.push({ dueMs, key, gen });
    // Stale items pile up when keys are rescheduled often; rebuild before they dominate.
    if (this.heap.length > 64 && this.heap.length > this.live.size * 4) this.compact();
    this.arm();
  }

  cancel(key: K): void {
    this.live.delete(key);
  }

  has(key: K): boolean {
    return this.live.has(key);
  }

  /** Earliest live due time, Infinity when empty. */
  peekDueMs(): number {
    this.dropStale();
    return this.heap.length > 0 ? this.heap[0].dueMs : Infinity;
  }

  /** Removes and returns every key due at nowMs or earlier. */
  popDue(nowMs: number): K[] {
    const out: K[] = [];
    for (;;) {
      this.dropStale();
      if (this.heap.length === 0 || this.heap[0].dueMs > nowMs) break;
      const item = this.pop();
      this.live.delete(item.key);
      out.push(item.key);
    }
    return out;
  }

  close(): void {
    this.timer?.cancel();
    this.timer = null;
    this.timerDueMs = Infinity;
  }

  private arm(): void {
    const due = this.peekDueMs();
    if (due === Infinity || due >= this.timerDueMs) return;
    this.timer?.cancel();
    this.timerDueMs = due;
    this.timer = this.clock.setTimer(due - this.clock.now(), () => this.fire());
  }

  private fire(): void {
    this.timer = null;
    this.timerDueMs = Infinity;
    const keys = this.popDue(this.clock.now());
    if (keys.length > 0) this.onDue(keys);
    this.arm();
  }

  private dropStale(): void {
    while (this.heap.length > 0 && this.live.get(this.heap[0].key) !== this.heap[0].gen) this.pop();
  }

  private compact(): void {
    this.heap = this.heap.filter((it) => this.live.get(it.key) === it.gen);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(item: HeapItem<K>): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].dueMs <= item.dueMs) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = item;
  }

  private pop(): HeapItem<K> {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }

  private down(start: number): void {
    const h = this.heap;
    const item = h[start];
    let i = start;
    for (;;) {
      const l = i * 2 + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r].dueMs < h[l].dueMs ? r : l;
      if (h[c].dueMs >= item.dueMs) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = item;
  }
}
