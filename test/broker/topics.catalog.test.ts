// The one namespace of topics, queues and exchanges (catalog.json) and the shared rate meter.
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/broker/catalog.js';
import { RateMeter } from '../../src/broker/rate-meter.js';
import { ManualClock, WharfError } from '../../src/common/index.js';
import { openMemoryStorage } from '../../src/storage/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof WharfError ? err.code : String(err);
  }
  return 'no error';
}

describe('catalog', () => {
  it('names are unique across kinds, survive a reload, and maxNames is enforced', async () => {
    const storage = openMemoryStorage();
    const c1 = await Catalog.load(storage, 3);
    c1.reserve('orders', 'topic');
    await c1.commit({ name: 'orders', kind: 'topic', config: { partitions: 3 }, createdAt: 1 });
    expect(codeOf(() => c1.reserve('orders', 'queue'))).toBe('ALREADY_EXISTS');
    c1.reserve('emails', 'queue');
    expect(codeOf(() => c1.reserve('emails', 'exchange'))).toBe('ALREADY_EXISTS'); // reserved, not yet committed
    await c1.commit({ name: 'emails', kind: 'queue', config: {}, createdAt: 2 });
    c1.reserve('events', 'exchange');
    expect(codeOf(() => c1.reserve('one-more', 'topic'))).toBe('LIMIT_EXCEEDED');
    c1.release('events');
    expect(codeOf(() => c1.reserve('bad name', 'topic'))).toBe('INVALID_ARGUMENT');

    const c2 = await Catalog.load(storage, 3);
    expect(c2.list().map((e) => [e.name, e.kind])).toEqual([
      ['emails', 'queue'],
      ['orders', 'topic'],
    ]);
    expect(c2.require('orders', 'topic').config).toEqual({ partitions: 3 });
    expect(codeOf(() => c2.require('emails', 'topic'))).toBe('NOT_FOUND');
    await c2.remove('emails');
    expect((await Catalog.load(storage)).list('queue')).toEqual([]);
    await storage.close();
  });
});

describe('rate meter', () => {
  it('reports events per second over the recent window and forgets old events', () => {
    const clock = new ManualClock(1_000_000);
    const m = new RateMeter(clock, 10_000);
    for (let i = 0; i < 10; i++) {
      if (i > 0) clock.advance(1000);
      m.mark(50);
    }
    expect(m.rate()).toBeCloseTo(50, 5); // 500 events in the last 10 one-second buckets
    clock.advance(5_000);
    expect(m.rate()).toBeCloseTo(25, 5); // half of them have left the window
    clock.advance(20_000);
    expect(m.rate()).toBe(0);
    expect(m.count).toBe(500);
  });
});
