// Competing consumers: several workers consume one queue; each job is handled by exactly one of them
// (redelivered only if its handler fails). A failing job is retried with backoff and succeeds later.
import type { Consumer, Wharf } from '../../src/broker/index.js';

export interface CompetingResult {
  /** Job number -> worker that completed it. */
  completedBy: Map<number, string>;
  /** Jobs per worker. */
  perWorker: Record<string, number>;
  /** Deliveries that failed and were retried. */
  retries: number;
}

export async function runCompetingConsumers(
  broker: Wharf,
  options: { jobs?: number; workers?: number; failOnce?: number[]; log?: (line: string) => void } = {},
): Promise<CompetingResult> {
  const jobs = options.jobs ?? 30;
  const workerCount = options.workers ?? 3;
  const failOnce = new Set(options.failOnce ?? [7]);
  const log = options.log ?? (() => undefined);
  await broker.createQueue('jobs', {
    visibilityTimeoutMs: 10_000,
    maxDeliveries: 5,
    retry: { initialDelayMs: 20, maxDelayMs: 200 },
  });

  const result: CompetingResult = { completedBy: new Map(), perWorker: {}, retries: 0 };
  let finish!: () => void;
  const allDone = new Promise<void>((r) => (finish = r));
  const consumers: Consumer[] = [];
  for (let w = 1; w <= workerCount; w++) {
    const worker = `worker-${w}`;
    result.perWorker[worker] = 0;
    consumers.push(
      await broker.consume('jobs', { concurrency: 1, prefetch: 1 }, async (m) => {
        const job = (m.payload as { job: number }).job;
        await new Promise((r) => setTimeout(r, 5)); // the "work"
        if (failOnce.delete(job)) {
          result.retries++;
          log(`${worker} failed job ${job} (attempt ${m.deliveryCount}); it will be retried`);
          throw new Error(`job ${job} failed`);
        }
        result.completedBy.set(job, worker);
        result.perWorker[worker]++;
        log(`${worker} did job ${job}${m.deliveryCount > 1 ? ` (attempt ${m.deliveryCount})` : ''}`);
        if (result.completedBy.size === jobs) finish();
      }),
    );
  }
  await broker.publish(
    'jobs',
    Array.from({ length: jobs }, (_, i) => ({ type: 'job', payload: { job: i + 1 } })),
  );
  await allDone;
  for (const c of consumers) await c.close();
  return result;
}
