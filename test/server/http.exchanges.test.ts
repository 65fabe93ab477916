// HTTP API over exchanges: create, list, bind, publish through routing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpFixture, type HttpFixture } from './http-helpers.js';

let f: HttpFixture;
beforeAll(async () => {
  f = await httpFixture();
});
afterAll(async () => {
  await f.close();
});

const post = (url: string, payload: object) => f.app.inject({ method: 'POST', url, payload });

describe('HTTP /exchanges', () => {
  it('creates a topic exchange, binds a queue by pattern, and routes published messages', async () => {
    await f.broker.createQueue('analytics');
    const created = await post('/exchanges', { name: 'events', type: 'topic' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'events', kind: 'exchange', type: 'topic' });
    expect((await f.app.inject({ url: '/exchanges' })).json().exchanges.map((e: { name: string }) => e.name)).toEqual([
      'events',
    ]);

    expect((await f.app.inject({ url: '/exchanges/events' })).json()).toMatchObject({ name: 'events', type: 'topic' });

    const bound = await post('/exchanges/events/bindings', { queue: 'analytics', pattern: 'order.*' });
    expect(bound.statusCode).toBe(201);
    expect(bound.json()).toMatchObject({ exchange: 'events', target: { queue: 'analytics' }, pattern: 'order.*' });
    expect((await f.app.inject({ url: '/exchanges/events/bindings' })).json().bindings).toHaveLength(1);

    const routed = await post('/exchanges/events/messages', { type: 'order.created', payload: { id: 1 } });
    expect(routed.statusCode).toBe(201);
    expect(routed.json().routed).toBe(1);
    const unroutable = await post('/exchanges/events/messages', { type: 'user.created', payload: {} });
    expect(unroutable.json().routed).toBe(0);

    const [m] = await f.broker.receive('analytics', { max: 10 });
    expect(m.payload).toEqual({ id: 1 });
    const stats = (await f.app.inject({ url: '/stats/events' })).json();
    expect(stats).toMatchObject({ kind: 'exchange', routed: 1, unroutable: 1 });
  });

  it('rejects a binding without exactly one target, and an unknown exchange', async () => {
    await post('/exchanges', { name: 'fan', type: 'fanout' });
    const none = await post('/exchanges/fan/bindings', { pattern: '#' });
    expect(none.statusCode).toBe(400);
    expect(none.json().error.code).toBe('INVALID_ARGUMENT');
    const two = await post('/exchanges/fan/bindings', { queue: 'a', topic: 'b' });
    expect(two.statusCode).toBe(400);
    const badType = await post('/exchanges', { name: 'x', type: 'broadcast' });
    expect(badType.statusCode).toBe(400);
    const missing = await post('/exchanges/nope/messages', { payload: 1 });
    expect(missing.statusCode).toBe(404);
  });
});
