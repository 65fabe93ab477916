// consumeStored handlers may return a HandlerOutcome and report it later (the native server does, on
// SETTLE): succeeded acks, failed nacks (retry, then dead letter), acked (the handler acked it itself)
// settles nothing more, the slot stays held until the report, a report before attach() is kept, only
// the first report counts, and 'auto' frees the slot.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HandlerOutcome, type StoredQueueDelivery } from '../../src/broker/index.js';
import { openTestBroker, qstats, settle, type TestBroker, until } from './queue-helpers.js';

describe('HandlerOutcome', () => {
  it('a report before attach() is applied by attach(), and only the first report counts', () => {
    const calls: Array<Error | null | 'released' | 'acked'> = [];
    const sink = {
      handlerSettled: (_m: unknown, err: Error | null) => void calls.push(err),
      handlerReleased: () => void calls.push('released'),
      handlerAcked: () => void calls.push('acked'),
    };
    const early = new HandlerOutcome();
    const boom = new Error('boom');
    early.failed(boom);
    early.succeeded();
    expect(calls).toEqual([]);
    early.attach(sink, {} as never);
    expect(calls).toEqual([boom]);

    const late = new HandlerOutcome();
    late.attach(sink, {} as never);
    late.succeeded();
    late.failed(new Error('ignored'));
    expect(calls).toEqual([boom, null]);
    expect(() => late.attach(sink, {} as never)).toThrow(/attached once/);

    const unsentEarly = new HandlerOutcome();
    unsentEarly.unsent();
    unsentEarly.failed(new Error('ignored'));
    unsentEarly.attach(sink, {} as never);
    const unsentLate = new HandlerOutcome();
    unsentLate.attach(sink, {} as never);
    unsentLate.unsent();
    unsentLate.succeeded();
    expect(calls).toEqual([boom, null, 'released', 'released']);

    const ackedEarly = new HandlerOutcome();
    ackedEarly.acked();
    ackedEarly.failed(new Error('ignored'));
    ackedEarly.attach(sink, {} as never);
    const ackedLate = new HandlerOutcome();
    ackedLate.attach(sink, {} as never);
    ackedLate.acked();
    ackedLate.unsent();
    expect(calls).toEqual([boom, null, 'released', 'released', 'acked', 'acked']);
  });
});

describe('consumeStored with HandlerOutcome', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('dlq');
    await t.broker.createQueue('q', {
      retry: { initialDelayMs: 10, jitter: 0 },
      maxDeliveries: 2,
      deadLetterQueue: 'dlq',
    });
  });
  afterEach(() => t.cleanup());

  it('succeeded acks; the slot is held until the report', async () => {
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    const held: Array<{ d: StoredQueueDelivery; o: HandlerOutcome }> = [];
    const c = await t.broker.consumeStored('q', { concurrency: 1, prefetch: 2 }, (d) => {
      const o = new HandlerOutcome();
      held.push({ d, o });
      return o;
    });
    await until(() => held.length === 1, t);
    await settle(5);
    expect(held).toHaveLength(1); // concurrency 1: the second waits for the first's outcome
    held[0].o.succeeded();
    await until(() => held.length === 2, t);
    held[1].o.succeeded();
    await settle(5);
    await c.close();
    const stats = await qstats(t, 'q');
    expect(stats.depth).toBe(0);
    expect(stats.inFlight).toBe(0);
  });

  it('unsent gives the message back uncounted and frees the slot', async () => {
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    const seen: Array<[unknown, number]> = [];
    let first = true;
    const c = await t.broker.consumeStored('q', { concurrency: 1, prefetch: 1 }, (d) => {
      const o = new HandlerOutcome();
      seen.push([d.record.value === null ? null : Buffer.from(d.record.value).toString(), d.deliveryCount]);
      if (first) {
        first = false;
        o.unsent();
      } else o.succeeded();
      return o;
    });
    await until(() => seen.length === 3, t);
    await c.close();
    expect(seen).toEqual([
      ['"a"', 1],
      ['"a"', 1], // back first (a redelivery), not counted
      ['"b"', 1],
    ]);
    expect((await qstats(t, 'q')).depth).toBe(0);
  });

  it('acked (the handler acked the message itself) frees the slot and settles nothing more', async () => {
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    const seen: string[] = [];
    const c = await t.broker.consumeStored('q', { concurrency: 1, prefetch: 1 }, (d) => {
      seen.push(Buffer.from(d.record.value!).toString());
      const o = new HandlerOutcome();
      void d.ack().then(() => o.acked());
      return o;
    });
    await until(() => seen.length === 2, t); // the first one's slot freed
    await settle(5);
    await c.close();
    t.clock.advance(60_000);
    expect(seen).toEqual(['"a"', '"b"']);
    const stats = await qstats(t, 'q');
    expect(stats.depth + stats.inFlight).toBe(0);
  });

  it('failed nacks: retried with a higher deliveryCount, then dead-lettered after maxDeliveries', async () => {
    await t.broker.publish('q', { payload: 'poison' });
    const counts: number[] = [];
    const c = await t.broker.consumeStored('q', { concurrency: 1 }, (d) => {
      counts.push(d.deliveryCount);
      const o = new HandlerOutcome();
      queueMicrotask(() => o.failed(new Error('handler failed')));
      return o;
    });
    await until(() => counts.length === 2, t, 20);
    let dlqDepth = 0;
    for (let i = 0; i < 200 && dlqDepth === 0; i++) {
      await settle(2);
      dlqDepth = (await qstats(t, 'dlq')).depth;
    }
    await c.close();
    expect(counts).toEqual([1, 2]);
    const [dead] = await t.broker.receive('dlq', { max: 1 });
    expect(dead.payload).toBe('poison');
    expect(dead.headers['x-dead-letter-error']).toBe('handler failed');
  });

  it('an outcome returned twice fails the second delivery like a throw, and the consumer goes on', async () => {
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    const reused = new HandlerOutcome();
    const counts = new Map<number, number>();
    const c = await t.broker.consumeStored('q', { concurrency: 2 }, (d) => {
      counts.set(d.record.offset, (counts.get(d.record.offset) ?? 0) + 1);
      return reused;
    });
    await until(() => counts.size === 2, t);
    reused.succeeded(); // the first delivery's outcome: acked
    // The second was nacked when its attach failed: redelivered (deliveryCount 2), then dead-lettered at maxDeliveries 2.
    for (let i = 0; i < 200 && (await qstats(t, 'dlq')).depth === 0; i++) {
      t.clock.advance(20);
      await settle(2);
    }
    await c.close();
    expect((await qstats(t, 'dlq')).depth).toBe(1);
    expect((await qstats(t, 'q')).depth).toBe(0);
  });

  it("ackMode 'auto': the message is acked before the handler runs and the slot frees on the report", async () => {
    await t.broker.publish('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    const seen: StoredQueueDelivery[] = [];
    const outcomes: HandlerOutcome[] = [];
    const c = await t.broker.consumeStored('q', { concurrency: 1, prefetch: 1, ackMode: 'auto' }, (d) => {
      seen.push(d);
      const o = new HandlerOutcome();
      outcomes.push(o);
      return o;
    });
    await until(() => seen.length === 1, t);
    await settle(5);
    expect(seen).toHaveLength(1);
    outcomes[0].failed(new Error('not retried: already acked'));
    await until(() => seen.length === 2, t);
    outcomes[1].succeeded();
    await until(() => seen.length === 3, t);
    outcomes[2].succeeded();
    await settle(5);
    await c.close();
    t.clock.advance(60_000);
    expect(await t.broker.receive('q', { max: 10 })).toEqual([]);
  });
});
