// Queues (receive, ack, nack, visibility, consume, dead letters, redrive) behave the same embedded
// and over the native protocol.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QueueMessage } from '../../src/broker/index.js';
import { factories, waitFor, type Target } from './factories.js';

describe.each(factories)('queues contract (%s)', (_name, make) => {
  let t: Target;
  beforeEach(async () => {
    t = await make();
  });
  afterEach(async () => {
    await t.close();
  });

  it('creates, lists, describes, purges and deletes a queue', async () => {
    const info = await t.wharf.createQueue('emails', { visibilityTimeoutMs: 5_000, maxDeliveries: 3 });
    expect(info).toMatchObject({ name: 'emails', kind: 'queue' });
    expect(info.options.visibilityTimeoutMs).toBe(5_000);
    expect((await t.wharf.listQueues()).map((q) => q.name)).toEqual(['emails']);
    expect((await t.wharf.describeQueue('emails')).name).toBe('emails');
    await t.wharf.publish('emails', [{ payload: 1 }, { payload: 2 }]);
    expect(await t.wharf.purgeQueue('emails')).toBe(2);
    await t.wharf.deleteQueue('emails');
    await expect(t.wharf.describeQueue('emails')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('an empty batch publish resolves with no results to a queue that exists, and fails with NOT_FOUND to one that does not', async () => {
    await t.wharf.createQueue('jobs');
    expect(await t.wharf.publish('jobs', [])).toEqual([]);
    await expect(t.wharf.publish('missing', [])).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('a publish of more than 10 000 messages is LIMIT_EXCEEDED and stores nothing; to a target that does not exist it is NOT_FOUND', async () => {
    await t.wharf.createQueue('jobs');
    await t.wharf.createTopic('events');
    const many = Array.from({ length: 10_001 }, (_, i) => ({ payload: i }));
    await expect(t.wharf.publish('jobs', many)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    await expect(t.wharf.publish('events', many)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    await expect(t.wharf.publish('missing', many)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await t.wharf.receive('jobs')).toEqual([]);
    expect(await t.wharf.publish('jobs', many.slice(0, 10_000))).toHaveLength(10_000);
  });

  it("a publish result says what a queue's overflow policy did instead of storing: dead-lettered or dropped", async () => {
    await t.wharf.createQueue('full.dlq');
    await t.wharf.createQueue('full', { maxLength: 1, overflow: 'dead-letter', deadLetterQueue: 'full.dlq' });
    const results = await t.wharf.publish('full', [{ payload: 1 }, { payload: 2 }]);
    expect(results.map((r) => r.overflow)).toEqual([undefined, 'dead-lettered']);
    await t.wharf.createQueue('ranked', { maxLength: 1, overflow: 'drop-lowest-priority', priorities: 2 });
    await t.wharf.publish('ranked', { payload: 'high', priority: 1 });
    expect(await t.wharf.publish('ranked', { payload: 'low', priority: 0 })).toMatchObject({ overflow: 'dropped' });
  });

  it('concurrent single publishes to a full queue store what fits, as one by one would, in call order', async () => {
    await t.wharf.createQueue('small', { maxLength: 3, overflow: 'reject' });
    const settled = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => t.wharf.publish('small', { payload: n })));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'QUEUE_FULL' });
    expect((await t.wharf.receive('small', { max: 10 })).map((m) => m.payload)).toEqual([1, 2, 3]);
  });

  it('receives with receipts; ack removes, nack returns the message with deliveryCount 2', async () => {
    await t.wharf.createQueue('emails');
    await t.wharf.publish('emails', [{ payload: { to: 'a' }, headers: { h: '1' } }, { payload: { to: 'b' } }]);
    const batch = await t.wharf.receive('emails', { max: 10 });
    expect(batch.map((m) => m.payload)).toEqual([{ to: 'a' }, { to: 'b' }]);
    expect(batch[0]).toMatchObject({ queue: 'emails', deliveryCount: 1, headers: { h: '1' } });
    expect(typeof batch[0].receipt).toBe('string');
    await batch[0].ack();
    await batch[1].nack({ delayMs: 0 });
    const again = await t.wharf.receive('emails', { max: 10 });
    expect(again.map((m) => [m.payload, m.deliveryCount])).toEqual([[{ to: 'b' }, 2]]);
    await again[0].extendVisibility(1_000);
    await again[0].ack();
    await expect(again[0].ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    const stats = await t.wharf.stats('emails');
    expect(stats).toMatchObject({ kind: 'queue', depth: 0, inFlight: 0 });
  });

  it('a consumer ends with NOT_FOUND when its queue is deleted, and with null when closed', async () => {
    await t.wharf.createQueue('doomed');
    await t.wharf.createQueue('kept');
    const seen: unknown[] = [];
    const doomed = await t.wharf.consume('doomed', { concurrency: 1 }, (m: QueueMessage) => void seen.push(m.payload));
    const kept = await t.wharf.consume('kept', {}, () => undefined);
    await t.wharf.publish('doomed', { payload: 'before' });
    await waitFor(() => seen.length === 1);
    await t.wharf.deleteQueue('doomed');
    const reason = await doomed.ended;
    expect(reason).toMatchObject({ code: 'NOT_FOUND' });
    expect(reason?.message).toContain('doomed');
    // A queue of the same name is a new queue: the ended consumer takes nothing from it.
    await t.wharf.createQueue('doomed');
    await t.wharf.publish('doomed', { payload: 'after' });
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual(['before']);
    expect((await t.wharf.receive('doomed', { max: 10 })).map((m) => m.payload)).toEqual(['after']);
    await doomed.close(); // harmless after the end
    await kept.close();
    expect(await kept.ended).toBeNull();
  });

  it('a long poll whose queue is deleted fails with NOT_FOUND instead of returning nothing', async () => {
    await t.wharf.createQueue('vanishing');
    const polling = t.wharf.receive('vanishing', { max: 1, waitMs: 10_000 });
    const outcome = polling.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await t.wharf.deleteQueue('vanishing');
    expect(await outcome).toMatchObject({ code: 'NOT_FOUND' });
    expect(Date.now() - t0).toBeLessThan(5_000); // not the rest of the 10 s wait
  });

  it('long-polls until a message arrives', async () => {
    await t.wharf.createQueue('jobs');
    const pending = t.wharf.receive('jobs', { max: 1, waitMs: 5_000 });
    await new Promise((r) => setTimeout(r, 50));
    await t.wharf.publish('jobs', { payload: 'late' });
    const got = await pending;
    expect(got.map((m) => m.payload)).toEqual(['late']);
  });

  it('consume acks on resolve and retries on throw, then dead-letters past maxDeliveries', async () => {
    await t.wharf.createQueue('jobs.dlq');
    await t.wharf.createQueue('jobs', {
      maxDeliveries: 2,
      deadLetterQueue: 'jobs.dlq',
      retry: { initialDelayMs: 1, maxDelayMs: 1 },
    });
    await t.wharf.publish('jobs', [{ payload: 'ok' }, { payload: 'bad' }]);
    const seen: Array<[unknown, number]> = [];
    const c = await t.wharf.consume('jobs', { concurrency: 2 }, (m: QueueMessage) => {
      seen.push([m.payload, m.deliveryCount]);
      if (m.payload === 'bad') throw new Error('always fails');
    });
    await waitFor(() => seen.length === 3);
    let dlq: QueueMessage[] = [];
    for (let i = 0; i < 100 && dlq.length === 0; i++) {
      dlq = await t.wharf.receive('jobs.dlq', { max: 10, waitMs: 50 });
    }
    await c.close();
    expect(seen.filter(([p]) => p === 'bad').map(([, n]) => n)).toEqual([1, 2]);
    expect(dlq.map((m) => m.payload)).toEqual(['bad']);
    await dlq[0].nack({ requeue: true, delayMs: 0 });
    expect(await t.wharf.redrive('jobs.dlq')).toBe(1);
    const back = await t.wharf.receive('jobs', { max: 10 });
    expect(back.map((m) => m.payload)).toEqual(['bad']);
  });

  it('consume runs at most `concurrency` handlers at once', async () => {
    await t.wharf.createQueue('work');
    await t.wharf.publish(
      'work',
      Array.from({ length: 20 }, (_, i) => ({ payload: i })),
    );
    let running = 0;
    let peak = 0;
    let done = 0;
    const c = await t.wharf.consume('work', { concurrency: 3 }, async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      done++;
    });
    await waitFor(() => done === 20);
    await c.close();
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });

  it('consume takes the same concurrency and prefetch ranges embedded and remote: prefetch up to 100 000, concurrency up to 10 000', async () => {
    await t.wharf.createQueue('ranges');
    for (const options of [
      { concurrency: 1, prefetch: 20_000 },
      { concurrency: 6_000 },
      { concurrency: 10_000, prefetch: 100_000 },
    ]) {
      const c = await t.wharf.consume('ranges', options, () => undefined);
      await c.close();
    }
    for (const options of [
      { concurrency: 10_001 },
      { concurrency: 4, prefetch: 2 },
      { concurrency: 1, prefetch: 100_001 },
      { concurrency: 1.5 },
    ]) {
      await expect(
        t.wharf.consume('ranges', options, () => undefined),
        JSON.stringify(options),
      ).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
    // A consumer whose prefetch is above what runs at once still gets every message.
    await t.wharf.publish(
      'ranges',
      Array.from({ length: 30 }, (_, i) => ({ payload: i })),
    );
    const seen: unknown[] = [];
    const c = await t.wharf.consume(
      'ranges',
      { concurrency: 1, prefetch: 20_000 },
      (m: QueueMessage) => void seen.push(m.payload),
    );
    await expect.poll(() => seen.length, { timeout: 5_000 }).toBe(30);
    await c.close();
  });

  it('a message published while close() waits for a running handler reaches no handler and goes back uncounted; no handler runs after close() resolves', async () => {
    await t.wharf.createQueue('work.dlq');
    await t.wharf.createQueue('work', { maxDeliveries: 1, deadLetterQueue: 'work.dlq' });
    const seen: unknown[] = [];
    let closedAt = -1;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const c = await t.wharf.consume('work', { concurrency: 1, prefetch: 2 }, async (m: QueueMessage) => {
      if (closedAt >= 0) throw new Error('a handler ran after close() resolved');
      seen.push(m.payload);
      if (m.payload === 'first') await held;
    });
    await t.wharf.publish('work', { payload: 'first' });
    await waitFor(() => seen.length === 1);
    const closed = c.close();
    await t.wharf.publish('work', { payload: 'second' });
    await new Promise((r) => setTimeout(r, 100)); // a free credit may bring it meanwhile
    release();
    await closed;
    closedAt = seen.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.length).toBe(closedAt);
    // 'second' is back in the queue, its delivery uncounted: embedded hands back what it had not
    // started, and a remote consumer releases what reaches it while it closes.
    expect(seen).toEqual(['first']);
    const back = (await t.wharf.receive('work', { waitMs: 500 })).map((m) => [m.payload, m.deliveryCount]);
    expect(back).toEqual([['second', 1]]);
    expect((await t.wharf.receive('work.dlq')).length).toBe(0);
  });
});
