// receive long-polls: returns as soon as a message is ready, or empty after waitMs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestBroker, settle, type TestBroker } from './queue-helpers.js';

describe('long polling', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker();
    await t.broker.createQueue('q');
  });
  afterEach(() => t.cleanup());

  it('returns as soon as a message is published', async () => {
    let got: unknown[] | null = null;
    const p = t.broker.receive('q', { waitMs: 10_000 }).then((m) => (got = m.map((x) => x.payload)));
    await settle();
    expect(got).toBeNull();
    await t.broker.publish('q', { payload: 'hello' });
    await p;
    expect(got).toEqual(['hello']);
  });

  it('returns empty after waitMs', async () => {
    let got: unknown[] | null = null;
    const p = t.broker.receive('q', { waitMs: 2000 }).then((m) => (got = m));
    await settle();
    t.clock.advance(1999);
    await settle();
    expect(got).toBeNull();
    t.clock.advance(1);
    await p;
    expect(got).toEqual([]);
  });

  it('rejects a wait longer than maxWaitMs', async () => {
    await expect(t.broker.receive('q', { waitMs: 60_000 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
