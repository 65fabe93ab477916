// consume pushes: a resolved handler acks, a thrown error nacks (retry), concurrency is honoured.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestBroker, settle, type TestBroker, qstats, until } from './queue-helpers.js';

describe('consume', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q', {
      retry: { initialDelayMs: 50, jitter: 0 },
      maxDeliveries: 3,
      deadLetterQueue: undefined,
    });
  });
  afterEach(() => t.cleanup());

  it('delivers every message once and acks on resolve', async () => {
    await t.broker.publish(
      'q',
      Array.from({ length: 50 }, (_, i) => ({ payload: i })),
    );
    const seen: number[] = [];
    const c = await t.broker.consume('q', { concurrency: 4 }, async (m) => {
      seen.push(m.payload as number);
    });
    await until(() => seen.length === 50, t);
    await c.close();
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    t.clock.advance(60_000);
    expect(await t.broker.receive('q', { max: 10 })).toEqual([]);
  });

  it('runs at most `concurrency` handlers at once', async () => {
    await t.broker.publish(
      'q',
      Array.from({ length: 20 }, (_, i) => ({ payload: i })),
    );
    let running = 0;
    let peak = 0;
    let done = 0;
    const c = await t.broker.consume('q', { concurrency: 3, prefetch: 6 }, async () => {
      running++;
      peak = Math.max(peak, running);
      await settle(3);
      running--;
      done++;
    });
    await until(() => done === 20, t);
    await c.close();
    expect(peak).toBe(3);
  });

  it('a thrown error nacks: the message is retried with a higher deliveryCount', async () => {
    await t.broker.publish('q', { payload: 'flaky' });
    const counts: number[] = [];
    const c = await t.broker.consume('q', { concurrency: 1 }, async (m) => {
      counts.push(m.deliveryCount);
      if (m.deliveryCount < 3) throw new Error('not yet');
    });
    await until(() => counts.length === 3, t, 10);
    await c.close();
    expect(counts).toEqual([1, 2, 3]);
    expect((await qstats(t, 'q')).depth).toBe(0);
  });

  it("ackMode 'auto' (at-most-once) acks on delivery: a throwing handler loses the message", async () => {
    await t.broker.publish('q', [{ payload: 'a' }, { payload: 'b' }]);
    const seen: unknown[] = [];
    const c = await t.broker.consume('q', { ackMode: 'auto' }, async (m) => {
      seen.push(m.payload);
      throw new Error('ignored');
    });
    await until(() => seen.length === 2, t);
    await c.close();
    t.clock.advance(120_000);
    expect(await t.broker.receive('q', { max: 10 })).toEqual([]);
    expect(seen).toEqual(['a', 'b']);
  });

  it("ackMode 'auto': a prefetched message whose lease ran out before its turn is not handled (its ack fails), so it is handled once", async () => {
    await t.broker.createQueue('short', { visibilityTimeoutMs: 1_000 });
    await t.broker.publish('short', [{ payload: 'a' }, { payload: 'b' }]);
    const seen: unknown[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const c = await t.broker.consume('short', { ackMode: 'auto', concurrency: 1, prefetch: 2 }, async (m) => {
      seen.push(m.payload);
      if (m.payload === 'a') await gate;
    });
    await until(() => seen.length === 1, t);
    t.clock.advance(2_000); // b, leased ahead and waiting for the slot, is visible again
    const elsewhere = await t.broker.receive('short', { max: 10 });
    expect(elsewhere.map((m) => m.payload)).toEqual(['b']);
    await elsewhere[0].ack();
    release();
    await settle(20); // b's turn comes: its ack fails (its lease ran out)
    await c.close();
    expect(seen).toEqual(['a']); // b was handled by the other receiver only: at most once
  });

  it('a prefetched message whose lease ran out before its turn goes to whoever has it now, not also to this handler', async () => {
    await t.broker.createQueue('short', { visibilityTimeoutMs: 1_000 });
    await t.broker.publish('short', [{ payload: 'a' }, { payload: 'b' }]);
    const seen: unknown[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const c = await t.broker.consume('short', { concurrency: 1, prefetch: 2 }, async (m) => {
      seen.push(m.payload);
      if (m.payload === 'a') await gate;
    });
    await until(() => seen.length === 1, t);
    t.clock.advance(1_500); // both leases run out: a's handler is still running, b waits for the slot
    const elsewhere = await t.broker.receive('short', { max: 10 });
    expect(elsewhere.map((m) => [m.payload, m.deliveryCount])).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
    release();
    await settle(20); // b's turn comes here
    await c.close();
    expect(seen).toEqual(['a']);
  });

  it('close releases unstarted leases so another consumer gets them at once', async () => {
    await t.broker.publish(
      'q',
      Array.from({ length: 10 }, (_, i) => ({ payload: i })),
    );
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    const c = await t.broker.consume('q', { concurrency: 1, prefetch: 5 }, async () => {
      started++;
      await gate;
    });
    await until(() => started === 1, t);
    const closing = c.close();
    release();
    await closing;
    const rest = await t.broker.receive('q', { max: 10 });
    expect(rest.length).toBe(9);
    expect(rest.every((m) => m.deliveryCount === 1)).toBe(true);
  });
});
