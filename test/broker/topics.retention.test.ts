// Topics keep messages by time and size, not by consumption: whole old segments are deleted,
// periodically (a Clock timer) and on demand, and readers start at the new log start.
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { TopicStats } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/index.js';
import { tempDir, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const body = 'x'.repeat(300);

describe('topics: retention', () => {
  it('retentionBytes deletes the oldest segments on demand; readers start at the new log start', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const b = await Broker.open({ dataDir: dir });
    cleanups.push(() => b.close());
    await b.createTopic('sized', { partitions: 1, segmentBytes: 2048, retentionBytes: 8192 });
    for (let i = 0; i < 100; i++) await b.publish('sized', { payload: { i, body } });
    const before = (await b.stats('sized')) as TopicStats;
    expect(before.partitions[0].startOffset).toBe(0);
    const deleted = await b.applyRetention('sized');
    expect(deleted).toBeGreaterThan(0);
    const after = (await b.stats('sized')) as TopicStats;
    const start = after.partitions[0].startOffset;
    expect(start).toBeGreaterThan(0);
    expect(after.partitions[0].endOffset).toBe(100);
    expect(after.partitions[0].bytes).toBeLessThan(before.partitions[0].bytes);
    expect(after.partitions[0].bytes).toBeLessThanOrEqual(8192 + 2048 * 2);
    const got: number[] = [];
    const sub = await b.subscribe(
      'sized',
      { group: 'late', from: 'earliest' },
      (m) => void got.push((m.payload as { i: number }).i),
    );
    cleanups.push(() => sub.close());
    await waitFor(() => got.length === 100 - start, 'the retained messages');
    expect(got).toEqual(Array.from({ length: 100 - start }, (_, k) => start + k));
  });

  it('retentionMs deletes segments older than the limit when the periodic retention timer fires', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const b = await Broker.open({ inMemory: true, clock, retentionCheckIntervalMs: 10_000 });
    cleanups.push(() => b.close());
    await b.createTopic('timed', { partitions: 1, segmentBytes: 2048, retentionMs: 60_000 });
    await b.createTopic('kept', { partitions: 1, segmentBytes: 2048 });
    for (let i = 0; i < 40; i++) {
      await b.publish('timed', { payload: { i, body } });
      await b.publish('kept', { payload: { i, body } });
    }
    clock.advance(120_000 - 10_000);
    for (let i = 40; i < 50; i++) await b.publish('timed', { payload: { i, body } });
    clock.advance(10_000); // the retention timer is due
    let stats = (await b.stats('timed')) as TopicStats;
    await waitFor(() => {
      void b.stats('timed').then((s) => (stats = s as TopicStats));
      return stats.partitions[0].startOffset > 0;
    }, 'old segments deleted');
    expect(stats.partitions[0].startOffset).toBeLessThanOrEqual(40);
    expect(stats.partitions[0].endOffset).toBe(50);
    expect(((await b.stats('kept')) as TopicStats).partitions[0].startOffset).toBe(0); // no retention configured
  });
});
