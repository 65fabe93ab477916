// /metrics: wharf_queue_expired and wharf_queue_dropped are QueueStats' expired and dropped, so
// messages a queue threw away (their ttlMs passed, its overflow policy made room, maxDeliveries
// without a dead-letter queue) show in a scrape and not only in stats().
import { afterEach, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';
import { BrokerMetrics } from '../../src/server/metrics.js';

let broker: Broker | null = null;
afterEach(async () => {
  await broker?.close();
  broker = null;
});

const line = (text: string, series: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(`${series} `));

it('exports each queue expired and dropped counts as wharf_queue_expired and wharf_queue_dropped, with their HELP and TYPE', async () => {
  const clock = new ManualClock();
  broker = await Broker.open({ inMemory: true, clock });
  await broker.createQueue('ttl');
  await broker.createQueue('full', { maxLength: 1, overflow: 'drop-oldest' });
  await broker.createQueue('poison', { maxDeliveries: 1 });
  const metrics = new BrokerMetrics(broker, {});
  let text = await metrics.scrape();
  for (const q of ['ttl', 'full', 'poison']) {
    expect(line(text, `wharf_queue_expired{queue="${q}"}`)).toBe(`wharf_queue_expired{queue="${q}"} 0`);
    expect(line(text, `wharf_queue_dropped{queue="${q}"}`)).toBe(`wharf_queue_dropped{queue="${q}"} 0`);
  }
  expect(text).toContain('# TYPE wharf_queue_expired gauge');
  expect(text).toContain('# TYPE wharf_queue_dropped gauge');
  expect(text).toMatch(/^# HELP wharf_queue_expired \S/m);
  expect(text).toMatch(/^# HELP wharf_queue_dropped \S/m);

  // Two expire (dropped, as onExpire defaults to); a receive meets them at the head.
  await broker.publish('ttl', [{ payload: 'a', ttlMs: 100 }, { payload: 'b', ttlMs: 100 }, { payload: 'c' }]);
  clock.advance(100);
  expect((await broker.receive('ttl', { max: 10 })).map((m) => m.payload)).toEqual(['c']);
  // drop-oldest makes room twice.
  for (const payload of ['x', 'y', 'z']) await broker.publish('full', { payload });
  // At maxDeliveries with no dead-letter queue: dropped.
  await broker.publish('poison', { payload: 'p' });
  const [m] = await broker.receive('poison', { max: 1 });
  await m.nack({ error: 'cannot handle it' });

  text = await metrics.scrape();
  expect(line(text, 'wharf_queue_expired{queue="ttl"}')).toBe('wharf_queue_expired{queue="ttl"} 2');
  expect(line(text, 'wharf_queue_dropped{queue="ttl"}')).toBe('wharf_queue_dropped{queue="ttl"} 0');
  expect(line(text, 'wharf_queue_dropped{queue="full"}')).toBe('wharf_queue_dropped{queue="full"} 2');
  expect(line(text, 'wharf_queue_expired{queue="full"}')).toBe('wharf_queue_expired{queue="full"} 0');
  expect(line(text, 'wharf_queue_dropped{queue="poison"}')).toBe('wharf_queue_dropped{queue="poison"} 1');
  // The same figures as stats().
  expect(await broker.stats('ttl')).toMatchObject({ expired: 2, dropped: 0 });
  expect(await broker.stats('full')).toMatchObject({ expired: 0, dropped: 2 });
  expect(await broker.stats('poison')).toMatchObject({ expired: 0, dropped: 1 });
});
