// TimerHeap: many due times on one clock timer.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/index.js';
import { TimerHeap } from '../../src/broker/queues/timer-heap.js';

describe('TimerHeap', () => {
  it('fires keys in due order on one clock timer, honouring reschedule and cancel', () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    const heap = new TimerHeap<number>(clock, (keys) => fired.push(...keys));
    heap.schedule(1, 300);
    heap.schedule(2, 100);
    heap.schedule(3, 200);
    heap.schedule(1, 50); // rescheduled earlier
    heap.cancel(3);
    clock.advance(99);
    expect(fired).toEqual([1]);
    clock.advance(1);
    expect(fired).toEqual([1, 2]);
    clock.advance(1000);
    expect(fired).toEqual([1, 2]);
    expect(heap.size).toBe(0);
  });

  it('popDue returns only keys due by then, earliest first', () => {
    const clock = new ManualClock(0);
    const heap = new TimerHeap<string>(clock, () => undefined);
    for (let i = 0; i < 100; i++) heap.schedule(`k${i}`, 1000 - i * 10);
    expect(heap.popDue(100).length).toBe(10);
    expect(heap.peekDueMs()).toBe(110);
    expect(heap.popDue(130)).toEqual(['k87', 'k88', 'k89'].reverse());
  });
});
