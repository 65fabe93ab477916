// A queue reads whole record batches and keeps what one take did not use: the next take starts from
// those records instead of reading and checking the batch again, and delivers exactly what it
// would have delivered from the log.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { READ_AHEAD_KEEP_MS, ReadAhead } from '../../src/broker/queues/read-ahead.js';
import { ManualClock } from '../../src/common/index.js';
import { DiskLog, type LogRecord } from '../../src/storage/index.js';
import { openTestBroker, type TestBroker } from './queue-helpers.js';

const rec = (offset: number): LogRecord => ({ offset, timestampMs: 0, key: null, value: null, headers: [] });

describe('read-ahead', () => {
  it('hands back kept records from exactly the offset asked for, once', () => {
    const ra = new ReadAhead(new ManualClock());
    const recs = [10, 11, 12, 13].map(rec);
    ra.keep(0, recs, 1);
    expect(ra.take(0, 12)!.map((r) => r.offset)).toEqual([12, 13]);
    expect(ra.take(0, 12)).toBeNull(); // taken
    ra.keep(0, recs, 1);
    expect(ra.take(0, 10)).toBeNull(); // before what was kept: read the log
    ra.keep(0, recs, 0);
    expect(ra.take(0, 14)).toBeNull(); // past it
    ra.keep(1, recs, 4); // nothing left to keep
    expect(ra.take(1, 14)).toBeNull();
    ra.keep(2, recs, 0);
    ra.clear();
    expect(ra.take(2, 10)).toBeNull();
  });

  it(`lets kept records go once they waited ${READ_AHEAD_KEEP_MS} ms for a take`, () => {
    const clock = new ManualClock();
    const ra = new ReadAhead(clock);
    ra.keep(0, [1, 2].map(rec), 0);
    clock.advance(READ_AHEAD_KEEP_MS / 2);
    ra.keep(1, [5, 6].map(rec), 0);
    clock.advance(READ_AHEAD_KEEP_MS / 2);
    expect(ra.levelsKept).toBe(1); // level 0 let go; level 1 kept half as long
    clock.advance(READ_AHEAD_KEEP_MS / 2);
    expect(ra.levelsKept).toBe(1); // the next look is KEEP_MS after the last
    clock.advance(READ_AHEAD_KEEP_MS / 2);
    expect(ra.levelsKept).toBe(0);
    expect(ra.take(1, 5)).toBeNull();
  });

  describe.each([true, false])('queue on disk %s', (disk) => {
    let t: TestBroker;
    afterEach(async () => {
      vi.restoreAllMocks();
      await t.cleanup();
    });

    it('takes from one batch in pieces: in order, each message once, settled and purged ones skipped', async () => {
      t = await openTestBroker({ disk });
      const b = t.broker;
      await b.createQueue('q');
      // One publish of 100 messages is one record batch.
      await b.publish(
        'q',
        Array.from({ length: 100 }, (_, i) => ({ payload: i })),
      );
      const reads = disk ? vi.spyOn(DiskLog.prototype, 'read') : null;
      const first = await b.receive('q', { max: 30 });
      expect(first.map((m) => m.payload)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      const second = await b.receive('q', { max: 30 });
      expect(second.map((m) => m.payload)).toEqual(Array.from({ length: 30 }, (_, i) => 30 + i));
      if (reads !== null) expect(reads).toHaveBeenCalledTimes(1); // the second take read nothing
      await Promise.all(first.map((m) => m.ack()));
      await second[0].nack({ delayMs: 0 }); // back to the queue: redelivered before the cursor moves on
      const third = await b.receive('q', { max: 5 });
      expect(third.map((m) => m.payload)).toEqual([30, 60, 61, 62, 63]);
      await b.purgeQueue('q');
      await b.publish('q', { payload: 'after purge' });
      const fourth = await b.receive('q', { max: 10 });
      expect(fourth.map((m) => m.payload)).toEqual(['after purge']);
    });
  });
});
