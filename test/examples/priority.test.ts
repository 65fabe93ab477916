// Priority queue example: higher priority first, FIFO within a level.
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { DEMO_TICKETS, runPriorityDemo } from '../../examples/priority/tickets.js';

describe('priority example', () => {
  it('hands out urgent tickets first and keeps arrival order within a priority', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      const order = await runPriorityDemo(broker, DEMO_TICKETS);
      expect(order.map((t) => t.title)).toEqual([
        'checkout is down',
        'login fails for SSO users',
        'password reset email slow',
        'search results stale',
        'newsletter typo',
        'feature request: dark mode',
        'invoice PDF misaligned',
      ]);
    } finally {
      await broker.close();
    }
  });
});
