// Competing consumers: every job is completed exactly once, work is shared by the workers, a failing job is retried.
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { runCompetingConsumers } from '../../examples/competing-consumers/workers.js';

describe('competing consumers example', () => {
  it('completes each of 30 jobs once, spread over 3 workers, retrying the one that fails', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      const result = await runCompetingConsumers(broker, { jobs: 30, workers: 3, failOnce: [7] });
      expect([...result.completedBy.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(Object.values(result.perWorker).reduce((a, b) => a + b, 0)).toBe(30);
      expect(Object.values(result.perWorker).filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
      expect(result.retries).toBe(1);
      const stats = await broker.stats('jobs');
      expect(stats).toMatchObject({ depth: 0 });
    } finally {
      await broker.close();
    }
  });
});
