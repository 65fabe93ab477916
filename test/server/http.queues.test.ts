// HTTP API over queues: CRUD, publish, receive with long poll, ack/nack by receipt, error mapping.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS, SERVER_LIMITS } from '../../src/common/index.js';
import { httpFixture, listen, type HttpFixture } from './http-helpers.js';

let f: HttpFixture;
beforeAll(async () => {
  f = await httpFixture();
});
afterAll(async () => {
  await f.close();
});

const post = (url: string, payload?: object) => f.app.inject({ method: 'POST', url, ...(payload ? { payload } : {}) });

describe('HTTP /queues', () => {
  it('creates, lists, describes and deletes a queue', async () => {
    const created = await post('/queues', { name: 'emails', visibilityTimeoutMs: 5000, maxDeliveries: 3 });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      name: 'emails',
      kind: 'queue',
      options: { visibilityTimeoutMs: 5000, maxDeliveries: 3 },
    });
    expect((await f.app.inject({ url: '/queues' })).json().queues.map((q: { name: string }) => q.name)).toContain(
      'emails',
    );
    expect((await f.app.inject({ url: '/queues/emails' })).json().options.maxDeliveries).toBe(3);
    expect((await f.app.inject({ method: 'DELETE', url: '/queues/emails' })).statusCode).toBe(204);
    expect((await f.app.inject({ url: '/queues/emails' })).statusCode).toBe(404);
    const badDlq = await post('/queues', { name: 'q-bad', deadLetterQueue: 'missing' });
    expect(badDlq.statusCode).toBe(404);
    expect(badDlq.json().error.code).toBe('NOT_FOUND');
  });

  it('takes what the native protocol takes: maxDeliveries 0 (retry forever, the default); a visibility timeout of 0 is refused by the schema it is described by', async () => {
    const created = await post('/queues', { name: 'forever', maxDeliveries: 0 });
    expect(created.statusCode).toBe(201);
    expect(created.json().options.maxDeliveries).toBe(0);
    const receive = await post('/queues/forever/receive', { visibilityTimeoutMs: 0 });
    expect(receive.statusCode).toBe(400);
    const schema = (await f.app.inject({ url: '/openapi.json' })).body;
    expect(schema).not.toContain('"maxDeliveries":{"type":"integer","minimum":1}');
  });

  it('refuses a payloadBase64 that is not standard base64, or that comes with a payload, and stores nothing', async () => {
    await post('/queues', { name: 'b64' });
    for (const body of [
      { payloadBase64: '%%%%' },
      { payloadBase64: 'YWJj' + '!' },
      { payloadBase64: 'YWI' },
      { payloadBase64: 'YWJj', payload: { a: 1 } },
    ]) {
      const res = await post('/queues/b64/messages', body);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
    }
    expect((await post('/queues/b64/messages', { payloadBase64: 'YWI=' })).statusCode).toBe(201);
    expect((await f.app.inject({ url: '/stats/b64' })).json().depth).toBe(1);
  });

  it('publishes, receives with a receipt, and acks by receipt; a second ack is 410 RECEIPT_INVALID', async () => {
    await post('/queues', { name: 'jobs' });
    const pub = await post('/queues/jobs/messages', { type: 'job', payload: { n: 1 } });
    expect(pub.statusCode).toBe(201);
    const got = await post('/queues/jobs/receive', { max: 10 });
    expect(got.statusCode).toBe(200);
    const [m] = got.json().messages;
    expect(m).toMatchObject({ queue: 'jobs', type: 'job', payload: { n: 1 }, deliveryCount: 1 });
    expect(typeof m.receipt).toBe('string');
    expect(m.ack).toBeUndefined();
    const stats1 = (await f.app.inject({ url: '/stats/jobs' })).json();
    expect(stats1).toMatchObject({ kind: 'queue', depth: 0, inFlight: 1 });

    const ack = await post('/queues/jobs/ack', { receipt: m.receipt });
    expect(ack.statusCode).toBe(200);
    expect(ack.json()).toEqual({ acked: 1 });
    expect((await f.app.inject({ url: '/stats/jobs' })).json()).toMatchObject({ depth: 0, inFlight: 0 });

    const again = await post('/queues/jobs/ack', { receipt: m.receipt });
    expect(again.statusCode).toBe(410);
    expect(again.json().error.code).toBe('RECEIPT_INVALID');
    const none = await post('/queues/jobs/ack', {});
    expect(none.statusCode).toBe(400);
  });

  it('a batch ack answers 200 with a result per receipt: the live ones are settled, a stale or unknown one is reported with its code', async () => {
    await post('/queues', { name: 'batch', visibilityTimeoutMs: 60_000 });
    await post('/queues/batch/messages', { messages: [{ payload: 1 }, { payload: 2 }, { payload: 3 }] });
    const [a, b, c] = (await post('/queues/batch/receive', { max: 3 })).json().messages;
    expect((await post('/queues/batch/ack', { receipt: a.receipt })).json()).toEqual({ acked: 1 });

    const res = await post('/queues/batch/ack', { receipts: [a.receipt, b.receipt, 'no-such-receipt', c.receipt] });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      acked: 2,
      failed: 2,
      results: [
        { receipt: a.receipt, ok: false, error: { code: 'RECEIPT_INVALID' } },
        { receipt: b.receipt, ok: true },
        { receipt: 'no-such-receipt', ok: false, error: { code: 'RECEIPT_INVALID' } },
        { receipt: c.receipt, ok: true },
      ],
    });
    expect(typeof body.results[0].error.message).toBe('string');
    expect((await f.app.inject({ url: '/stats/batch' })).json()).toMatchObject({ depth: 0, inFlight: 0 });
  });

  it('a batch nack settles each live receipt and reports the others; a repeated receipt, a bad option or a missing queue fails the whole request and settles nothing', async () => {
    await post('/queues', { name: 'batch-nack', visibilityTimeoutMs: 60_000 });
    await post('/queues/batch-nack/messages', { messages: [{ payload: 1 }, { payload: 2 }] });
    const [a, b] = (await post('/queues/batch-nack/receive', { max: 2 })).json().messages;
    const inFlight = async (): Promise<number> => (await f.app.inject({ url: '/stats/batch-nack' })).json().inFlight;

    const twice = await post('/queues/batch-nack/nack', { receipts: [a.receipt, b.receipt, a.receipt] });
    expect(twice.statusCode).toBe(400);
    expect(twice.json().error.code).toBe('INVALID_ARGUMENT');
    const badDelay = await post('/queues/batch-nack/nack', { receipts: [a.receipt, b.receipt], delayMs: 10 ** 12 });
    expect(badDelay.statusCode).toBe(400);
    const missing = await post('/queues/no-such-queue/nack', { receipts: [a.receipt] });
    expect(missing.statusCode).toBe(404);
    expect(await inFlight()).toBe(2);

    await post('/queues/batch-nack/ack', { receipt: b.receipt });
    const res = await post('/queues/batch-nack/nack', { receipts: [a.receipt, b.receipt], delayMs: 0 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      nacked: 1,
      failed: 1,
      results: [
        { receipt: a.receipt, ok: true },
        { receipt: b.receipt, ok: false, error: { code: 'RECEIPT_INVALID' } },
      ],
    });
    const [again] = (await post('/queues/batch-nack/receive', { waitMs: 2000 })).json().messages;
    expect(again).toMatchObject({ payload: 1, deliveryCount: 2 });
    // A batch of one is a batch: its answer has the same shape whatever happened.
    const one = await post('/queues/batch-nack/ack', { receipts: [a.receipt] });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ acked: 0, failed: 1, results: [{ ok: false }] });
  });

  it('a batch of more than maxReceiptsPerRequest receipts (receipt included) is 400 INVALID_ARGUMENT and settles nothing; a whole receive of maxReceiveMessages fits in one', async () => {
    expect(SERVER_LIMITS.maxReceiptsPerRequest).toBe(LIMITS.maxReceiveMessages);
    const n = SERVER_LIMITS.maxReceiptsPerRequest;
    await post('/queues', { name: 'batch-limit', visibilityTimeoutMs: 60_000 });
    const messages = Array.from({ length: n + 1 }, (_, i) => ({ payload: i }));
    expect((await post('/queues/batch-limit/messages', { messages })).statusCode).toBe(201);
    const got: { receipt: string }[] = (await post('/queues/batch-limit/receive', { max: n })).json().messages;
    expect(got).toHaveLength(n);
    const [extra] = (await post('/queues/batch-limit/receive', { max: 1 })).json().messages;
    const receipts = got.map((m) => m.receipt);
    const inFlight = async (): Promise<number> => (await f.app.inject({ url: '/stats/batch-limit' })).json().inFlight;

    for (const [route, body] of [
      ['ack', { receipts: [...receipts, extra.receipt] }],
      ['ack', { receipt: extra.receipt, receipts }],
      ['nack', { receipts: [...receipts, extra.receipt], delayMs: 0 }],
    ] as const) {
      const res = await post(`/queues/batch-limit/${route}`, body);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
      expect(res.json().error.message).toContain(`maxReceiptsPerRequest (${n})`);
      expect(await inFlight()).toBe(n + 1);
    }
    const all = await post('/queues/batch-limit/ack', { receipts });
    expect(all.statusCode).toBe(200);
    expect(all.json()).toMatchObject({ acked: n, failed: 0 });
    expect(await inFlight()).toBe(1);
    const described = (await f.app.inject({ url: '/openapi.json' })).json();
    const ackSchema = described.paths['/queues/{name}/ack'].post.requestBody.content['application/json'].schema;
    expect(ackSchema.properties.receipts.description).toContain(`At most ${n} receipts per request`);
  });

  it('nack by receipt makes the message visible again with deliveryCount 2', async () => {
    await post('/queues', { name: 'retries' });
    await post('/queues/retries/messages', { payload: 'x' });
    const [m] = (await post('/queues/retries/receive', {})).json().messages;
    const nack = await post('/queues/retries/nack', { receipt: m.receipt, delayMs: 0 });
    expect(nack.statusCode).toBe(200);
    expect(nack.json()).toEqual({ nacked: 1 });
    const [again] = (await post('/queues/retries/receive', { waitMs: 2000 })).json().messages;
    expect(again).toMatchObject({ payload: 'x', deliveryCount: 2 });
  });

  it('long poll: receive waits for a message published during the wait', async () => {
    await post('/queues', { name: 'waiting' });
    const t0 = Date.now();
    const pending = post('/queues/waiting/receive', { max: 1, waitMs: 5000 });
    setTimeout(() => void f.broker.publish('waiting', { payload: 'late' }), 200);
    const res = await pending;
    expect(res.json().messages.map((m: { payload: unknown }) => m.payload)).toEqual(['late']);
    expect(Date.now() - t0).toBeLessThan(4500);
    const empty = await post('/queues/waiting/receive', { waitMs: 100 });
    expect(empty.json().messages).toEqual([]);
  });

  it('a receive with an attemptId, sent again (its answer lost), gets the same messages and receipts while their leases hold', async () => {
    await post('/queues', { name: 'attempts', visibilityTimeoutMs: 60_000 });
    await post('/queues/attempts/messages', { messages: [{ payload: 1 }, { payload: 2 }, { payload: 3 }] });
    const first = (await post('/queues/attempts/receive', { max: 2, attemptId: 'try-1' })).json().messages;
    expect(first.map((m: { payload: number }) => m.payload)).toEqual([1, 2]);
    const again = (await post('/queues/attempts/receive', { max: 2, attemptId: 'try-1' })).json().messages;
    expect(again).toEqual(first);
    expect(
      (await post('/queues/attempts/receive', { max: 10, attemptId: 'try-2' }))
        .json()
        .messages.map((m: { payload: number }) => m.payload),
    ).toEqual([3]);
    expect((await post('/queues/attempts/ack', { receipt: first[0].receipt })).statusCode).toBe(200);
    const third = (await post('/queues/attempts/receive', { max: 2, attemptId: 'try-1' })).json().messages;
    expect(third.map((m: { receipt: string }) => m.receipt)).toEqual([first[1].receipt]);
    for (const attemptId of ['', 'has space', 'x'.repeat(129)]) {
      expect((await post('/queues/attempts/receive', { attemptId })).statusCode).toBe(400);
    }
  });

  it('a long poll abandoned by its client hands its messages back at once and uncounted, instead of after the lease', async () => {
    await post('/queues', { name: 'abandoned', visibilityTimeoutMs: 60_000, maxDeliveries: 1 });
    const base = await listen(f);
    const controller = new AbortController();
    const polling = fetch(`${base}/queues/abandoned/receive`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ waitMs: 3000 }),
      signal: controller.signal,
    }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 200));
    controller.abort();
    expect(await polling).toBe('aborted');
    await new Promise((r) => setTimeout(r, 100));
    await f.broker.publish('abandoned', { payload: 'kept' });
    // Delivered to the abandoned poll (its lease would last 60 s), then handed back by the HTTP layer.
    await expect
      .poll(async () => {
        const s = await f.broker.stats('abandoned');
        return s.kind === 'queue' ? s.depth : -1;
      })
      .toBe(1);
    const again = await f.broker.receive('abandoned', { waitMs: 100 });
    expect(again.map((m) => m.payload)).toEqual(['kept']);
    expect(again[0].deliveryCount).toBe(1); // the abandoned poll's delivery reached no one
  });

  it('validates receive and publish bodies: max over the limit, wrong types, a queue route on a topic', async () => {
    await post('/queues', { name: 'checked' });
    expect((await post('/queues/checked/receive', { max: 5000 })).json().error.code).toBe('INVALID_ARGUMENT');
    expect((await post('/queues/checked/receive', { waitMs: 'soon' })).statusCode).toBe(400);
    const notJson = await f.app.inject({
      method: 'POST',
      url: '/queues/checked/messages',
      payload: 'not json',
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error.code).toBe('INVALID_ARGUMENT');
    expect((await f.app.inject({ url: '/stats/checked' })).json().depth).toBe(0);
    await f.broker.createTopic('a-topic');
    expect((await post('/queues/a-topic/messages', { payload: 1 })).statusCode).toBe(404);
  });

  it('a full queue answers 429 QUEUE_FULL with Retry-After', async () => {
    await post('/queues', { name: 'tiny', maxLength: 1, overflow: 'reject' });
    expect((await post('/queues/tiny/messages', { payload: 1 })).statusCode).toBe(201);
    const full = await post('/queues/tiny/messages', { payload: 2 });
    expect(full.statusCode).toBe(429);
    expect(full.json().error.code).toBe('QUEUE_FULL');
    expect(Number(full.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('/metrics reports queue depth, in-flight and DLQ depth', async () => {
    await post('/queues', { name: 'm.dlq' });
    await post('/queues', { name: 'm', deadLetterQueue: 'm.dlq', maxDeliveries: 1 });
    await post('/queues/m/messages', { messages: [{ payload: 1 }, { payload: 2 }, { payload: 3 }] });
    const [m] = (await post('/queues/m/receive', { max: 1 })).json().messages;
    await post('/queues/m/nack', { receipt: m.receipt, requeue: false });
    await post('/queues/m/receive', { max: 1 });
    const text = (await f.app.inject({ url: '/metrics' })).body;
    expect(text).toContain('wharf_queue_depth{queue="m"} 1');
    expect(text).toContain('wharf_queue_in_flight{queue="m"} 1');
    expect(text).toContain('wharf_queue_dlq_depth{queue="m"} 1');
    expect(text).toContain('wharf_queue_depth{queue="m.dlq"} 1');
    expect(text).toMatch(/wharf_queue_oldest_message_age_seconds\{queue="m"\} [\d.e-]+/);
    expect(text).toMatch(/wharf_queue_publish_per_second\{queue="m"\} [\d.e-]+/);
  });
});
