// Priority queues: a higher level is always delivered first, FIFO within a level.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestBroker, type TestBroker } from './queue-helpers.js';

describe('priorities', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q', { priorities: 10 });
  });
  afterEach(() => t.cleanup());

  it('delivers higher priority first and FIFO within a level', async () => {
    await t.broker.publish('q', [
      { payload: 'low-1', priority: 0 },
      { payload: 'high-1', priority: 9 },
      { payload: 'mid-1', priority: 5 },
      { payload: 'low-2' },
      { payload: 'high-2', priority: 9 },
      { payload: 'mid-2', priority: 5 },
    ]);
    const got = (await t.broker.receive('q', { max: 10 })).map((m) => m.payload);
    expect(got).toEqual(['high-1', 'high-2', 'mid-1', 'mid-2', 'low-1', 'low-2']);
  });

  it('a high-priority message published later overtakes a waiting backlog', async () => {
    await t.broker.publish(
      'q',
      Array.from({ length: 5 }, (_, i) => ({ payload: `low-${i}`, priority: 1 })),
    );
    expect((await t.broker.receive('q'))[0].payload).toBe('low-0');
    await t.broker.publish('q', { payload: 'urgent', priority: 8 });
    expect((await t.broker.receive('q'))[0].payload).toBe('urgent');
  });

  it('clamps a priority above the top level to the top level', async () => {
    await t.broker.publish('q', [
      { payload: 'nine', priority: 9 },
      { payload: 'big', priority: 50 },
    ]);
    expect((await t.broker.receive('q', { max: 2 })).map((m) => m.payload)).toEqual(['nine', 'big']);
  });

  it('a redelivered message keeps its priority', async () => {
    await t.broker.publish('q', [
      { payload: 'hi', priority: 7 },
      { payload: 'lo', priority: 2 },
    ]);
    const [m] = await t.broker.receive('q');
    await m.nack({ delayMs: 0 });
    expect((await t.broker.receive('q', { max: 2 })).map((x) => x.payload)).toEqual(['hi', 'lo']);
  });
});
