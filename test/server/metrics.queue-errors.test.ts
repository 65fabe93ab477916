// /metrics: wharf_queue_receive_errors and wharf_queue_dead_letter_errors are QueueStats'
// receiveErrors and deadLetterErrors, so a queue whose receives fail (here: its dead-letter queue
// cannot take an expired message) does not look healthy.
import { afterEach, expect, it, vi } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { QueueEngine } from '../../src/broker/queues/queue.js';
import { ManualClock, WharfError } from '../../src/common/index.js';
import { BrokerMetrics } from '../../src/server/metrics.js';

let broker: Broker | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  await broker?.close();
  broker = null;
});

const line = (text: string, series: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(`${series} `));

it('counts the failed receives of each queue in wharf_queue_receive_errors, and the dead letters it could not write in wharf_queue_dead_letter_errors', async () => {
  const clock = new ManualClock();
  broker = await Broker.open({ inMemory: true, clock });
  await broker.createQueue('q.dlq');
  await broker.createQueue('q', { onExpire: 'dead-letter', deadLetterQueue: 'q.dlq' });
  await broker.publish('q', [{ payload: 'stale', ttlMs: 100 }, { payload: 'ready' }]);
  clock.advance(100);
  const metrics = new BrokerMetrics(broker, {});
  expect(line(await metrics.scrape(), 'wharf_queue_receive_errors{queue="q"}')).toBe(
    'wharf_queue_receive_errors{queue="q"} 0',
  );
  vi.spyOn(QueueEngine.prototype, 'appendRecords').mockRejectedValue(new WharfError('UNAVAILABLE', 'disk failed'));
  for (let i = 0; i < 2; i++)
    await expect(broker.receive('q', { max: 10 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  const text = await metrics.scrape();
  expect(line(text, 'wharf_queue_receive_errors{queue="q"}')).toBe('wharf_queue_receive_errors{queue="q"} 2');
  expect(line(text, 'wharf_queue_receive_errors{queue="q.dlq"}')).toBe('wharf_queue_receive_errors{queue="q.dlq"} 0');
  // Each of those receives met the expired message and could not dead-letter it.
  expect(line(text, 'wharf_queue_dead_letter_errors{queue="q"}')).toBe('wharf_queue_dead_letter_errors{queue="q"} 2');
});
