// Operational HTTP routes: /healthz, /readyz, /metrics (Prometheus text from broker.stats), /openapi.json, /stats.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpFixture, type HttpFixture } from './http-helpers.js';

let f: HttpFixture;
let ready = true;
beforeAll(async () => {
  f = await httpFixture({ isReady: () => ready });
});
afterAll(async () => {
  await f.close();
});

describe('HTTP operations', () => {
  it('/healthz is 200 while the process runs; /readyz turns 503 UNAVAILABLE with Retry-After when not ready', async () => {
    expect((await f.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await f.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    ready = false;
    const notReady = await f.app.inject({ url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json().error.code).toBe('UNAVAILABLE');
    expect(notReady.headers['retry-after']).toBe('1');
    expect((await f.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    ready = true;
  });

  it('/metrics reports topic size, partition offsets and group lag in Prometheus text format', async () => {
    await f.broker.createTopic('metered', { partitions: 2 });
    await f.broker.publish('metered', [
      { payload: 1, partition: 0 },
      { payload: 2, partition: 0 },
      { payload: 3, partition: 1 },
    ]);
    let seen = 0;
    const sub = await f.broker.subscribe('metered', { group: 'billing', from: 'earliest' }, () => {
      seen++;
    });
    await expect.poll(() => seen).toBe(3);
    await sub.close();
    await f.broker.publish('metered', { payload: 4, partition: 1 });

    const res = await f.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.body;
    expect(text).toContain('# TYPE wharf_topic_messages gauge');
    expect(text).toContain('wharf_topic_messages{topic="metered"} 4');
    expect(text).toContain('wharf_topic_partition_end_offset{topic="metered",partition="0"} 2');
    expect(text).toContain('wharf_topic_partition_end_offset{topic="metered",partition="1"} 2');
    expect(text).toContain('wharf_topic_group_lag{topic="metered",group="billing"} 1');
    expect(text).toMatch(/wharf_connections\{listener="http"\} \d+/);
    expect(text).toContain('# TYPE wharf_bytes_received_total counter');
    expect(text).toContain('wharf_process_cpu_seconds_total');
    expect(text).not.toContain('wharf_process_process_');
  });

  it('/metrics drops a name once it is deleted', async () => {
    await f.broker.createTopic('short-lived');
    expect((await f.app.inject({ url: '/metrics' })).body).toContain('topic="short-lived"');
    await f.broker.deleteTopic('short-lived');
    expect((await f.app.inject({ url: '/metrics' })).body).not.toContain('topic="short-lived"');
  });

  it('/openapi.json describes every route with its schema', async () => {
    const res = await f.app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [
      '/healthz',
      '/readyz',
      '/metrics',
      '/topics',
      '/topics/{name}',
      '/topics/{name}/messages',
      '/topics/{name}/events',
      '/stats/{name}',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    expect(doc.paths['/topics'].post.requestBody.content['application/json'].schema.required).toEqual(['name']);
    expect(Object.keys(doc.paths)).not.toContain('/openapi.json');
  });

  it('/openapi.json lists the status each route really answers on success, its error body, and SSE as text/event-stream', async () => {
    const doc = (await f.app.inject({ url: '/openapi.json' })).json();
    const documented = (path: string, method: string): string[] => Object.keys(doc.paths[path][method].responses);
    const answered = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object): Promise<string> => {
      const res = await f.app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
      return String(res.statusCode);
    };
    const calls: Array<[string, 'GET' | 'POST' | 'DELETE', string, object?]> = [
      ['/topics', 'POST', '/topics', { name: 'oa-t' }],
      ['/topics/{name}/messages', 'POST', '/topics/oa-t/messages', { payload: 1 }],
      ['/topics/{name}', 'GET', '/topics/oa-t'],
      ['/topics/{name}', 'DELETE', '/topics/oa-t'],
      ['/queues', 'POST', '/queues', { name: 'oa-q' }],
      ['/queues/{name}/messages', 'POST', '/queues/oa-q/messages', { payload: 1 }],
      ['/queues/{name}/receive', 'POST', '/queues/oa-q/receive', {}],
      ['/queues/{name}', 'DELETE', '/queues/oa-q'],
      ['/exchanges', 'POST', '/exchanges', { name: 'oa-x', type: 'fanout' }],
      ['/queues', 'POST', '/queues', { name: 'oa-bound' }],
      ['/exchanges/{name}/bindings', 'POST', '/exchanges/oa-x/bindings', { queue: 'oa-bound' }],
      ['/exchanges/{name}/messages', 'POST', '/exchanges/oa-x/messages', { payload: 1 }],
      ['/exchanges/{name}', 'GET', '/exchanges/oa-x'],
    ];
    for (const [path, method, url, payload] of calls) {
      const status = await answered(method, url, payload);
      expect(documented(path, method.toLowerCase()), `${method} ${path}`).toEqual([status, '4XX', '5XX']);
    }
    expect(
      doc.paths['/queues'].post.responses['4XX'].content['application/json'].schema.properties.error.required,
    ).toEqual(['code', 'message']);
    expect(Object.keys(doc.paths['/topics/{name}/events'].get.responses['200'].content)).toEqual(['text/event-stream']);
    // A batch ack or nack answers a result per receipt.
    for (const [path, count] of [
      ['/queues/{name}/ack', 'acked'],
      ['/queues/{name}/nack', 'nacked'],
    ]) {
      const answer = doc.paths[path].post.responses['200'].content['application/json'].schema;
      expect(Object.keys(answer.properties)).toEqual([count, 'failed', 'results']);
      expect(answer.properties.results.items.properties.error.required).toEqual(['code', 'message']);
    }
  });

  it('/stats/{name} returns the broker stats, and 404 for an unknown name', async () => {
    await f.broker.createTopic('counted', { partitions: 1 });
    await f.broker.publish('counted', { payload: 'x' });
    const res = await f.app.inject({ url: '/stats/counted' });
    expect(res.json()).toMatchObject({
      kind: 'topic',
      name: 'counted',
      messages: 1,
      partitions: [{ partition: 0, startOffset: 0, endOffset: 1 }],
    });
    const missing = await f.app.inject({ url: '/stats/missing' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('NOT_FOUND');
  });
});
