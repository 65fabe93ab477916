// Queue administration: create, describe, list, purge, delete; dead-letter queues must exist first.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestBroker, type TestBroker } from './queue-helpers.js';

describe('queue administration', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
  });
  afterEach(() => t.cleanup());

  it('creates a queue with defaults, describes and lists it', async () => {
    const info = await t.broker.createQueue('emails', { visibilityTimeoutMs: 5000 });
    expect(info).toMatchObject({
      name: 'emails',
      kind: 'queue',
      options: { visibilityTimeoutMs: 5000, priorities: 1, fifo: false, overflow: 'reject' },
    });
    expect((await t.broker.describeQueue('emails')).name).toBe('emails');
    await t.broker.createQueue('alerts');
    expect((await t.broker.listQueues()).map((q) => q.name)).toEqual(['alerts', 'emails']);
  });

  it('rejects a duplicate name, a bad option and a missing deadLetterQueue', async () => {
    await t.broker.createQueue('q');
    await expect(t.broker.createQueue('q')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await expect(t.broker.createQueue('p', { priorities: 11 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(t.broker.createQueue('r', { deadLetterQueue: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await t.broker.listQueues()).map((q) => q.name)).toEqual(['q']);
  });

  it('purges every waiting message and deletes a queue', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    expect(await t.broker.purgeQueue('q')).toBe(3);
    expect(await t.broker.receive('q', { max: 10 })).toEqual([]);
    await t.broker.deleteQueue('q');
    await expect(t.broker.describeQueue('q')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.broker.publish('q', { payload: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses to delete a queue that another queue dead-letters to', async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { deadLetterQueue: 'q.dlq' });
    await expect(t.broker.deleteQueue('q.dlq')).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
