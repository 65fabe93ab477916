// Transactions: inputs acked, outputs published and offsets committed all together, or none.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';

let broker: Broker;
beforeEach(async () => {
  broker = await Broker.open({ inMemory: true });
  await broker.createQueue('in', { visibilityTimeoutMs: 60_000 });
  await broker.createQueue('out');
  await broker.createTopic('events', { partitions: 1 });
  await broker.createTopic('src', { partitions: 2 });
});
afterEach(async () => {
  await broker.close();
});

async function depth(queue: string): Promise<number> {
  const s = await broker.stats(queue);
  return s.kind === 'queue' ? s.depth + s.inFlight : -1;
}
async function topicEnd(topic: string): Promise<number> {
  const s = await broker.stats(topic);
  return s.kind === 'topic' ? s.partitions.reduce((n, p) => n + p.endOffset, 0) : -1;
}
async function committed(topic: string, group: string, partition: number): Promise<number | undefined> {
  const s = await broker.stats(topic);
  return s.kind === 'topic' ? s.groups[group]?.partitions.find((p) => p.partition === partition)?.committed : undefined;
}

describe('transactions', () => {
  it('commit: the ack, the publishes (topic, queue, exchange) and the offset commit all apply', async () => {
    await broker.createQueue('fanned');
    await broker.createExchange('fan', { type: 'fanout' });
    await broker.bind('fan', { queue: 'fanned' });
    await broker.publish('in', { type: 'order' });
    const [input] = await broker.receive('in');
    const value = await broker.transaction(async (tx) => {
      await tx.ack(input);
      await tx.publish('out', { type: 'shipment' });
      await tx.publish('events', [{ type: 'e1' }, { type: 'e2' }]);
      await tx.publish('fan', { type: 'fanned' });
      await tx.commitOffset({ topic: 'src', group: 'g', partition: 1, offset: 7 });
      return 'done';
    });
    expect(value).toBe('done');
    expect(await depth('in')).toBe(0);
    expect((await broker.receive('out')).map((m) => m.type)).toEqual(['shipment']);
    expect((await broker.receive('fanned')).map((m) => m.type)).toEqual(['fanned']);
    expect(await topicEnd('events')).toBe(2);
    expect(await committed('src', 'g', 1)).toBe(7);
    await expect(input.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
  });

  it('abort: a callback that throws leaves no ack, no output and no offset', async () => {
    await broker.publish('in', { type: 'order' });
    const [input] = await broker.receive('in');
    await expect(
      broker.transaction(async (tx) => {
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
    await input.ack(); // still our lease: the transaction did not settle it
    expect(await depth('in')).toBe(0);
  });

  it('outputs are invisible until commit (read committed)', async () => {
    let seenInside = -1;
    await broker.transaction(async (tx) => {
      await tx.publish('out', { type: 'x' });
      seenInside = (await broker.receive('out')).length;
    });
    expect(seenInside).toBe(0);
    expect((await broker.receive('out')).length).toBe(1);
  });

  it('a stale receipt fails the whole transaction before anything is written', async () => {
    await broker.publish('in', { type: 'order' });
    const [input] = await broker.receive('in');
    await input.ack();
    await expect(
      broker.transaction(async (tx) => {
        await tx.publish('out', { type: 'shipment' });
        await tx.ack(input);
      }),
    ).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    expect(await depth('out')).toBe(0);
  });

  it('two transactions acking the same delivery at once: one commits, the other is refused', async () => {
    await broker.publish('in', { type: 'order' });
    const [input] = await broker.receive('in');
    const run = (type: string) =>
      broker.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('out', { type });
      });
    const [first, second] = await Promise.allSettled([run('first'), run('second')]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({
      status: 'rejected',
      reason: { code: 'RECEIPT_INVALID', message: expect.stringMatching(/another transaction/) },
    });
    expect((await broker.receive('out', { max: 10 })).map((m) => m.type)).toEqual(['first']);
    // Once the first settled the receipt is simply spent.
    await expect(run('third')).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
  });

  it('a commit that fails releases its receipts for the next transaction', async () => {
    await broker.publish('in', { type: 'order' });
    const [input] = await broker.receive('in');
    await expect(
      broker.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('missing', { type: 'x' });
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await broker.transaction(async (tx) => {
      await tx.ack(input);
      await tx.publish('out', { type: 'shipment' });
    });
    expect(await depth('in')).toBe(0);
    expect(await depth('out')).toBe(1);
  });

  it('a target that would refuse (QUEUE_FULL) or does not exist fails the whole transaction', async () => {
    await broker.createQueue('tiny', { maxLength: 1, overflow: 'reject' });
    await broker.publish('tiny', { type: 'filler' });
    await broker.publish('in', { type: 'order' });
    const [input] = await broker.receive('in');
    await expect(
      broker.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('out', { type: 'shipment' });
        await tx.publish('tiny', { type: 'overflow' });
      }),
    ).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await expect(
      broker.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('missing', { type: 'x' });
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      broker.transaction(async (tx) => {
        await tx.ack(input);
        await tx.commitOffset({ topic: 'src', group: 'g', partition: 9, offset: 1 });
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await depth('out')).toBe(0);
    expect(await depth('tiny')).toBe(1);
    await input.ack();
  });

  it('tx cannot be used after its callback finished', async () => {
    let leaked: Parameters<Parameters<Broker['transaction']>[0]>[0] | null = null;
    await broker.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked!.publish('out', { type: 'late' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await depth('out')).toBe(0);
  });

  it('dedupId on a queue: a repeat within the window resolves with the original id', async () => {
    const first = await broker.publish('out', { type: 'a', dedupId: 'order-1' });
    const again = await broker.publish('out', { type: 'a', dedupId: 'order-1' });
    expect(again).toMatchObject({ id: first.id, duplicate: true });
    expect(await depth('out')).toBe(1);
  });
});
