// Bounded memory: a backlog is ranges, not objects; in-order acks keep one settled range.
import { describe, expect, it } from 'vitest';
import { QueueState } from '../../src/broker/queues/queue-state.js';

describe('queue memory bounds', () => {
  it('a million-message backlog delivered and acked in order holds one settled range and no tracked messages', () => {
    const s = new QueueState(1);
    s.levels[0].endOffset = 1_000_000;
    for (let o = 0; o < 1_000_000; o++) {
      const t = s.deliver(0, s.nextCursorOffset(0), 0, 1000, undefined, 10);
      s.levels[0].cursor = t.offset + 1;
      s.settle(0, t.offset);
      if (o % 10_000 === 0) s.takeOps();
    }
    expect(s.levels[0].settled.rangeCount).toBe(1);
    expect(s.tracked.size).toBe(0);
    expect(s.messageCount()).toBe(0);
  });

  it('acks out of order cost one range per gap, and the gaps close as acks arrive', () => {
    const s = new QueueState(1);
    s.levels[0].endOffset = 100;
    for (let o = 0; o < 100; o += 2) s.settle(0, o);
    expect(s.levels[0].settled.rangeCount).toBe(50);
    for (let o = 1; o < 100; o += 2) s.settle(0, o);
    expect(s.levels[0].settled.rangeCount).toBe(1);
    expect(s.messageCount()).toBe(0);
  });
});
