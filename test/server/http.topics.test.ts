// HTTP API over topics: create/list/describe/delete, publish (single and batch), errors as WharfError bodies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpFixture, type HttpFixture } from './http-helpers.js';

let f: HttpFixture;
beforeAll(async () => {
  f = await httpFixture();
});
afterAll(async () => {
  await f.close();
});

describe('HTTP /topics', () => {
  it('creates, lists, describes and deletes a topic', async () => {
    const created = await f.app.inject({ method: 'POST', url: '/topics', payload: { name: 'orders', partitions: 3 } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'orders', kind: 'topic', partitions: 3 });

    const list = await f.app.inject({ method: 'GET', url: '/topics' });
    expect(list.json().topics.map((t: { name: string }) => t.name)).toEqual(['orders']);

    const one = await f.app.inject({ method: 'GET', url: '/topics/orders' });
    expect(one.statusCode).toBe(200);
    expect(one.json().partitions).toBe(3);

    const del = await f.app.inject({ method: 'DELETE', url: '/topics/orders' });
    expect(del.statusCode).toBe(204);
    const gone = await f.app.inject({ method: 'GET', url: '/topics/orders' });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('NOT_FOUND');
  });

  it('publishes one message and a batch, which land in the log in order', async () => {
    await f.broker.createTopic('events', { partitions: 1 });
    const one = await f.app.inject({
      method: 'POST',
      url: '/topics/events/messages',
      payload: { type: 'a', key: 'k', payload: { n: 1 } },
    });
    expect(one.statusCode).toBe(201);
    expect(one.json()).toMatchObject({ partition: 0, offset: 0 });
    const batch = await f.app.inject({
      method: 'POST',
      url: '/topics/events/messages',
      payload: { messages: [{ payload: { n: 2 } }, { payloadBase64: Buffer.from([1, 2, 3]).toString('base64') }] },
    });
    expect(batch.statusCode).toBe(201);
    expect(batch.json().results.map((r: { offset: number }) => r.offset)).toEqual([1, 2]);
    const stats = await f.app.inject({ method: 'GET', url: '/stats/events' });
    expect(stats.json()).toMatchObject({ kind: 'topic', name: 'events', messages: 3 });

    const seen: unknown[] = [];
    const sub = await f.broker.subscribe('events', { from: 'earliest' }, (m) => {
      seen.push(m.payload);
    });
    await expect.poll(() => seen.length).toBe(3);
    await sub.close();
    expect(seen[0]).toEqual({ n: 1 });
    expect(seen[1]).toEqual({ n: 2 });
    expect(Array.from(seen[2] as Uint8Array)).toEqual([1, 2, 3]);
  });

  it('maps broker errors: duplicate -> 409 ALREADY_EXISTS, bad name -> 400, unknown -> 404', async () => {
    await f.app.inject({ method: 'POST', url: '/topics', payload: { name: 't1' } });
    const dup = await f.app.inject({ method: 'POST', url: '/topics', payload: { name: 't1' } });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error).toMatchObject({ code: 'ALREADY_EXISTS' });
    const bad = await f.app.inject({ method: 'POST', url: '/topics', payload: { name: 'no spaces allowed' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('INVALID_ARGUMENT');
    const missing = await f.app.inject({ method: 'POST', url: '/topics/nope/messages', payload: { payload: 1 } });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('NOT_FOUND');
    const route = await f.app.inject({ method: 'GET', url: '/no/such/route' });
    expect(route.statusCode).toBe(404);
    expect(route.json().error.code).toBe('NOT_FOUND');
  });

  it('rejects a body that is not JSON with 400 INVALID_ARGUMENT and stores nothing', async () => {
    await f.broker.createTopic('t', { partitions: 1 });
    const namesBefore = (await f.broker.listTopics()).map((t) => t.name);
    for (const [payload, contentType] of [
      ['{"payload": ', 'application/json'],
      ['hello', 'text/plain'],
    ]) {
      const res = await f.app.inject({
        method: 'POST',
        url: '/topics/t/messages',
        payload,
        headers: { 'content-type': contentType },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
      expect(typeof res.json().error.message).toBe('string');
    }
    const unknownField = await f.app.inject({
      method: 'POST',
      url: '/topics/t/messages',
      payload: { payload: 1, colour: 'red' },
    });
    expect(unknownField.statusCode).toBe(400);
    const stats = await f.broker.stats('t');
    expect(stats.kind === 'topic' && stats.messages).toBe(0);
    expect((await f.broker.listTopics()).map((t) => t.name)).toEqual(namesBefore);
  });

  it('a message over maxMessageBytes is refused with 413 MESSAGE_TOO_LARGE', async () => {
    await f.broker.createTopic('small', { partitions: 1, maxMessageBytes: 100 });
    const res = await f.app.inject({
      method: 'POST',
      url: '/topics/small/messages',
      payload: { payload: 'x'.repeat(500) },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('MESSAGE_TOO_LARGE');
  });
});
