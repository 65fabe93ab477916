// Transactions (acks, publishes and offset commits, all or none) behave the same embedded and over
// the native protocol (TRANSACTION, version 7).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QueueMessage, Transaction } from '../../src/broker/index.js';
import { factories, waitFor, type Target } from './factories.js';

describe.each(factories)('transactions contract (%s)', (_name, make) => {
  let t: Target;
  beforeEach(async () => {
    t = await make();
    await t.wharf.createQueue('in', { visibilityTimeoutMs: 60_000 });
    await t.wharf.createQueue('out');
    await t.wharf.createTopic('events', { partitions: 1 });
    await t.wharf.createTopic('src', { partitions: 2 });
  });
  afterEach(async () => {
    await t.close();
  });

  async function depth(queue: string): Promise<number> {
    const s = await t.wharf.stats(queue);
    return s.kind === 'queue' ? s.depth + s.inFlight : -1;
  }
  async function topicEnd(topic: string): Promise<number> {
    const s = await t.wharf.stats(topic);
    return s.kind === 'topic' ? s.partitions.reduce((n, p) => n + p.endOffset, 0) : -1;
  }
  async function committed(topic: string, group: string, partition: number): Promise<number | undefined> {
    const s = await t.wharf.stats(topic);
    return s.kind === 'topic'
      ? s.groups[group]?.partitions.find((p) => p.partition === partition)?.committed
      : undefined;
  }
  async function received(queue: string): Promise<QueueMessage[]> {
    return t.wharf.receive(queue, { max: 10 });
  }
  /** A message published to queue in, received: leased to the test. */
  async function leasedInput(): Promise<QueueMessage> {
    await t.wharf.publish('in', { type: 'order' });
    const [input] = await t.wharf.receive('in');
    return input;
  }

  it('commit: the ack, the publishes (topic, queue, exchange) and the offset commit all apply', async () => {
    await t.wharf.createQueue('fanned');
    await t.wharf.createExchange('fan', { type: 'fanout' });
    await t.wharf.bind('fan', { queue: 'fanned' });
    const input = await leasedInput();
    const value = await t.wharf.transaction(async (tx) => {
      await tx.ack(input);
      await tx.publish('out', { type: 'shipment', payload: { n: 1 }, headers: { trace: 'x' } });
      await tx.publish('events', [{ type: 'e1' }, { type: 'e2' }]);
      await tx.publish('fan', { type: 'fanned' });
      await tx.commitOffset({ topic: 'src', group: 'g', partition: 1, offset: 7 });
      return 'done';
    });
    expect(value).toBe('done');
    expect(await depth('in')).toBe(0);
    const [out] = await received('out');
    expect(out).toMatchObject({ type: 'shipment', payload: { n: 1 }, headers: { trace: 'x' } });
    expect((await received('fanned')).map((m) => m.type)).toEqual(['fanned']);
    expect(await topicEnd('events')).toBe(2);
    expect(await committed('src', 'g', 1)).toBe(7);
    await expect(input.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
  });

  it('abort: a callback that throws sends and applies nothing; the lease is still the caller’s', async () => {
    const input = await leasedInput();
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('out', { type: 'shipment' });
        await tx.publish('events', { type: 'e' });
        await tx.commitOffset({ topic: 'src', group: 'g', partition: 0, offset: 3 });
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await depth('out')).toBe(0);
    expect(await topicEnd('events')).toBe(0);
    expect(await committed('src', 'g', 0)).toBeUndefined();
    await input.ack();
    expect(await depth('in')).toBe(0);
  });

  it('outputs are invisible until commit (read committed)', async () => {
    let seenInside = -1;
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', { type: 'x' });
      seenInside = (await t.wharf.receive('out')).length;
    });
    expect(seenInside).toBe(0);
    expect((await received('out')).length).toBe(1);
  });

  it('byte payloads, keys and ids pass through a transaction as through a publish', async () => {
    const bytes = new Uint8Array([0, 1, 2, 255]);
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', { id: 'own-id', key: 'k', payload: bytes });
    });
    const [m] = await received('out');
    expect(m.id).toBe('own-id');
    expect(m.key).toBe('k');
    expect([...(m.payload as Uint8Array)]).toEqual([0, 1, 2, 255]);
  });

  it('a stale receipt fails the whole transaction before anything is written', async () => {
    const input = await leasedInput();
    await input.ack();
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.publish('out', { type: 'shipment' });
        await tx.ack(input);
      }),
    ).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    expect(await depth('out')).toBe(0);
  });

  it('two transactions acking the same delivery: one commits, the other is refused', async () => {
    const input = await leasedInput();
    const run = (type: string): Promise<void> =>
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('out', { type });
      });
    const [first, second] = await Promise.allSettled([run('first'), run('second')]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({ status: 'rejected', reason: { code: 'RECEIPT_INVALID' } });
    expect((await received('out')).map((m) => m.type)).toEqual(['first']);
    await expect(run('third')).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
  });

  it('a commit that fails releases its receipts for the next transaction', async () => {
    const input = await leasedInput();
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('missing', { type: 'x' });
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await t.wharf.transaction(async (tx) => {
      await tx.ack(input);
      await tx.publish('out', { type: 'shipment' });
    });
    expect(await depth('in')).toBe(0);
    expect(await depth('out')).toBe(1);
  });

  it('a target that would refuse (QUEUE_FULL), does not exist, or an offset outside the topic fails it all', async () => {
    await t.wharf.createQueue('tiny', { maxLength: 1, overflow: 'reject' });
    await t.wharf.publish('tiny', { type: 'filler' });
    const input = await leasedInput();
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('out', { type: 'shipment' });
        await tx.publish('tiny', { type: 'overflow' });
      }),
    ).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.commitOffset({ topic: 'src', group: 'g', partition: 9, offset: 1 });
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await depth('out')).toBe(0);
    expect(await depth('tiny')).toBe(1);
    await input.ack();
  });

  it('misuse fails as embedded: tx after its callback, a non-message ack, too many operations', async () => {
    let leaked: Transaction | null = null;
    await t.wharf.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked!.publish('out', { type: 'late' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack({ queue: 'in' } as QueueMessage);
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.publish(
          'out',
          Array.from({ length: 10_001 }, (_, i) => ({ payload: i })),
        );
      }),
    ).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    await expect(t.wharf.transaction('nope' as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await depth('out')).toBe(0);
  });

  it('a consume handler acks its input inside a transaction (consume-transform-produce)', async () => {
    await t.wharf.publish('in', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    let committedCount = 0;
    const consumer = await t.wharf.consume('in', { concurrency: 2 }, async (m) => {
      await t.wharf.transaction(async (tx) => {
        await tx.ack(m);
        await tx.publish('out', { payload: (m.payload as number) * 10 });
      });
      committedCount++;
    });
    await waitFor(() => committedCount === 3);
    await consumer.close();
    expect(await depth('in')).toBe(0);
    expect((await received('out')).map((m) => m.payload as number).sort((a, b) => a - b)).toEqual([10, 20, 30]);
  });

  it('an idempotent producer’s sequence in a transaction is stored once, in or out of one', async () => {
    const message = { producerId: 'p-1', sequence: 0, payload: 'once' };
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', message);
    });
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', message);
    });
    await t.wharf.publish('out', message);
    expect(await depth('out')).toBe(1);
  });

  it('two deliveries that share an id are both acked: an ack is named by its receipt', async () => {
    await t.wharf.publish('in', [
      { id: 'same', payload: 1 },
      { id: 'same', payload: 2 },
    ]);
    const both = await t.wharf.receive('in', { max: 2 });
    expect(both.map((m) => m.id)).toEqual(['same', 'same']);
    await t.wharf.transaction(async (tx) => {
      for (const m of both) await tx.ack(m);
      await tx.publish('out', { payload: 'done' });
    });
    expect(await depth('in')).toBe(0);
    expect(await depth('out')).toBe(1);
  });

  it('an empty publish stores nothing but needs its target, as outside a transaction', async () => {
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.publish('missing', []);
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', []);
      await tx.publish('out', { payload: 'one' });
    });
    expect(await depth('out')).toBe(1);
  });

  it('an offset commit with a missing or wrongly typed field is INVALID_ARGUMENT, and nothing applies', async () => {
    const bad: unknown[] = [
      { group: 'g', partition: 0, offset: 1 },
      { topic: 'src', partition: 0, offset: 1 },
      { topic: 'src', group: 'g', partition: -1, offset: 1 },
      { topic: 'src', group: 'g', partition: 0, offset: 1.5 },
      { topic: 'src', group: 'g', partition: '0', offset: 1 },
      null,
    ];
    for (const commit of bad) {
      await expect(
        t.wharf.transaction(async (tx) => {
          await tx.publish('out', { payload: 'x' });
          await tx.commitOffset(commit as never);
        }),
        JSON.stringify(commit),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await depth('out')).toBe(0);
    expect(await committed('src', 'g', 0)).toBeUndefined();
  });

  it('an empty transaction resolves with its value and changes nothing', async () => {
    expect(await t.wharf.transaction(async () => 42)).toBe(42);
    expect(await depth('out')).toBe(0);
  });
});
