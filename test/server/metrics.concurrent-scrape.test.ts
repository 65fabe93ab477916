// Two scrapes at once (an HA pair of Prometheus servers, or curl during a scrape) must each return every
// series: docs/operations.md says /metrics reads stats of every topic, queue and exchange at scrape time.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { httpFixture, type HttpFixture } from './http-helpers.js';

let f: HttpFixture;
beforeAll(async () => {
  f = await httpFixture();
  for (let i = 0; i < 20; i++) {
    await f.broker.createQueue(`q${i}`);
    await f.broker.publish(`q${i}`, { payload: i });
  }
});
afterAll(async () => f.close());

const depthSeries = (text: string): number => text.split('\n').filter((l) => l.startsWith('wharf_queue_depth{')).length;

it('a single scrape reports all 20 queues', async () => {
  expect(depthSeries((await f.app.inject({ url: '/metrics' })).body)).toBe(20);
});

it('two concurrent scrapes each report all 20 queues', async () => {
  const [a, b] = await Promise.all([f.app.inject({ url: '/metrics' }), f.app.inject({ url: '/metrics' })]);
  expect([depthSeries(a.body), depthSeries(b.body)]).toEqual([20, 20]);
});

it('a scrape that starts while another is under way leaves the first one complete', async () => {
  const counts: number[] = [];
  for (let ticks = 0; ticks < 400; ticks += 7) {
    const a = f.metrics.scrape();
    for (let i = 0; i < ticks; i++) await Promise.resolve();
    const b = f.metrics.scrape();
    const [ta, tb] = await Promise.all([a, b]);
    counts.push(depthSeries(ta), depthSeries(tb));
  }
  expect(
    counts.every((c) => c === 20),
    `fewest series in one scrape: ${Math.min(...counts)} of 20`,
  ).toBe(true);
});
