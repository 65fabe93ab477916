// /metrics when a name's stats fail: docs/operations.md says the failure is counted in
// wharf_stats_errors_total and logged, and the rest of the scrape still reports every other name.
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { WharfError } from '../../src/common/index.js';
import { buildHttpApp, type HttpApp } from '../../src/server/http/app.js';
import { BrokerMetrics } from '../../src/server/metrics.js';

let broker: Broker;
beforeEach(async () => {
  broker = await Broker.open({ inMemory: true });
  await broker.createTopic('orders');
  await broker.createQueue('good');
  await broker.createQueue('broken');
  await broker.createQueue('deleted');
  await broker.createExchange('events', { type: 'fanout' });
  const stats = broker.stats.bind(broker);
  vi.spyOn(broker, 'stats').mockImplementation(async (name) => {
    if (name === 'broken') throw new WharfError('CORRUPT_DATA', 'segment 0 of broken: bad CRC');
    if (name === 'deleted') throw new WharfError('NOT_FOUND', 'queue "deleted" does not exist');
    return stats(name);
  });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await broker.close();
});

const line = (text: string, series: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(`${series} `));

it('a name whose stats fail is counted in wharf_stats_errors_total by kind and left out; the others are scraped', async () => {
  const told: Array<[string, string, string]> = [];
  const metrics = new BrokerMetrics(broker, {}, (kind, name, err) => told.push([kind, name, err.code]));
  const first = await metrics.scrape();
  expect(line(first, 'wharf_queue_depth{queue="good"}')).toBeDefined();
  expect(line(first, 'wharf_topic_messages{topic="orders"}')).toBeDefined();
  expect(line(first, 'wharf_exchange_routed{exchange="events"}')).toBeDefined();
  expect(line(first, 'wharf_queue_depth{queue="broken"}')).toBeUndefined();
  expect(line(first, 'wharf_stats_errors_total{kind="queue"}')).toBe('wharf_stats_errors_total{kind="queue"} 1');
  // A name deleted during the scrape is not an error.
  expect(told).toEqual([['queue', 'broken', 'CORRUPT_DATA']]);
  const second = await metrics.scrape();
  expect(line(second, 'wharf_stats_errors_total{kind="queue"}')).toBe('wharf_stats_errors_total{kind="queue"} 2');
});

it('wharf_stats_errors_total is at 0 for every kind before any failure, so the first one is an increase', async () => {
  vi.mocked(broker.stats).mockRestore();
  const metrics = new BrokerMetrics(broker, {});
  const text = await metrics.scrape();
  for (const kind of ['topic', 'queue', 'exchange'])
    expect(line(text, `wharf_stats_errors_total{kind="${kind}"}`)).toBe(`wharf_stats_errors_total{kind="${kind}"} 0`);
});

it("GET /metrics answers 200 with the other names and warns of the failed one with its code (wharf serve: the server's log)", async () => {
  let http: HttpApp | null = null;
  try {
    const warn = vi.fn();
    http = await buildHttpApp(broker, { maxBodyBytes: 1 << 20, warn });
    const res = await http.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(line(res.body, 'wharf_queue_depth{queue="good"}')).toBeDefined();
    expect(line(res.body, 'wharf_stats_errors_total{kind="queue"}')).toBe('wharf_stats_errors_total{kind="queue"} 1');
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ kind: 'queue', name: 'broken', code: 'CORRUPT_DATA' }),
      'metrics: stats of queue "broken" failed; left out of this scrape',
    );
  } finally {
    await http?.app.close();
  }
});
