// Lease batches: messages delivered together share one timer entry; each lease still ends on its own
// terms (settled, extended, expired), settled batches leave the timer at once, and no lease's timer
// outlives it.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/index.js';
import { LeaseBook } from '../../src/broker/queues/lease-book.js';
import { QueueState } from '../../src/broker/queues/queue-state.js';
import { TimerHeap } from '../../src/broker/queues/timer-heap.js';

function setup(): {
  clock: ManualClock;
  state: QueueState;
  book: LeaseBook;
  timers: TimerHeap<number>;
  due: Array<[number, number]>;
} {
  const clock = new ManualClock(1_000);
  const state = new QueueState(1);
  state.levels[0].endOffset = 100;
  const due: Array<[number, number]> = [];
  const book: { current: LeaseBook | null } = { current: null };
  const timers = new TimerHeap<number>(clock, (keys) => {
    for (const k of keys) book.current!.takeDue(k, (key, token) => due.push([key, token]));
  });
  book.current = new LeaseBook(timers);
  return { clock, state, book: book.current, timers, due };
}

describe('lease book', () => {
  it('expires a batch with one timer entry and hands out each lease with its token', () => {
    const { clock, state, book, timers, due } = setup();
    for (let o = 0; o < 5; o++) {
      const t = state.deliver(0, o, clock.now(), 500, undefined, 10);
      book.add(t, t.dueMs);
    }
    book.close();
    expect(timers.size).toBe(1);
    expect(book.batchCount).toBe(1);
    clock.advance(499);
    expect(due).toEqual([]);
    clock.advance(1);
    expect(due.map(([key]) => key)).toEqual([0, 1, 2, 3, 4].map((o) => o * 16));
    expect(due.every(([, token]) => token > 0)).toBe(true);
    expect(book.batchCount).toBe(0);
  });

  it('drops a batch from the timer once all its leases are released', () => {
    const { clock, state, book, timers, due } = setup();
    const ts = [0, 1, 2].map((o) => {
      const t = state.deliver(0, o, clock.now(), 500, undefined, 10);
      book.add(t, t.dueMs);
      return t;
    });
    book.close();
    book.release(ts[0]);
    book.release(ts[1]);
    expect(book.batchCount).toBe(1);
    book.release(ts[2]);
    expect(book.batchCount).toBe(0);
    expect(timers.size).toBe(0);
    clock.advance(1_000);
    expect(due).toEqual([]);
    expect(ts.every((t) => t.leaseBatch === 0)).toBe(true);
  });

  it('starts a new batch when the due time differs, and a released lease is not a member twice', () => {
    const { clock, state, book, timers } = setup();
    const a = state.deliver(0, 0, clock.now(), 500, undefined, 10);
    book.add(a, a.dueMs);
    const b = state.deliver(0, 1, clock.now(), 900, undefined, 10);
    book.add(b, b.dueMs);
    book.close();
    expect(book.batchCount).toBe(2);
    expect(timers.size).toBe(2);
    expect(() => book.add(a, a.dueMs)).toThrow(/at most one lease batch/);
  });

  it('an extension moves the lease to a timer of its own, and whatever ends the lease ends that timer too', () => {
    const { clock, state, book, timers, due } = setup();
    const t = state.deliver(0, 0, clock.now(), 500, undefined, 10);
    book.add(t, t.dueMs);
    book.close();
    book.extend(t, clock.now() + 500);
    expect([book.batchCount, timers.size, t.leaseBatch]).toEqual([0, 1, 0]);
    book.release(t);
    expect(timers.size).toBe(0);
    clock.advance(1_000);
    expect(due).toEqual([]);
  });

  it('refuses a lease while a timer of an earlier one is left, before changing anything', () => {
    const { clock, state, book, timers } = setup();
    const t = state.deliver(0, 0, clock.now(), 500, undefined, 10);
    timers.schedule(t.key, clock.now() + 500); // an extension nothing ended
    expect(() => book.add(t, t.dueMs)).toThrow(/no timer of an earlier one/);
    expect([t.leaseBatch, book.batchCount]).toEqual([0, 0]);
  });
});
