// close() of a broker or client settles what is on its way, embedded and remote alike: a subscribe
// or consume still starting when close() is called runs no handler, and has settled by the time
// close() resolved, as rejected with CLOSED (as a call made after close() is) or as a flow already
// ended with null; nothing of it is left running.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Consumer, Subscription } from '../../src/broker/index.js';
import { factories, type Target } from './factories.js';

/** How a subscribe or consume started just before close() settled, seen once close() resolved. */
async function settledByClose(
  start: Promise<Subscription | Consumer>,
  closing: Promise<void>,
): Promise<{ code: string } | { endedWith: unknown }> {
  let outcome: { code: string } | { flow: Subscription | Consumer } | null = null;
  start.then(
    (flow) => (outcome = { flow }),
    (err: { code: string }) => (outcome = { code: err.code }),
  );
  await closing;
  expect(outcome, 'settled before close() resolved').not.toBeNull();
  const o = outcome as unknown as { code: string } | { flow: Subscription | Consumer };
  if ('code' in o) return o;
  const ended = await Promise.race([o.flow.ended, new Promise((r) => setTimeout(r, 1_000, 'pending'))]);
  return { endedWith: ended };
}

describe.each(factories)('close contract (%s)', (_name, make) => {
  let t: Target;
  beforeEach(async () => {
    t = await make();
  });
  afterEach(async () => {
    await t.close();
  });

  it.each([
    ['a private reader', { from: 'earliest' as const }],
    ['a group member', { group: 'g', from: 'earliest' as const }],
  ])(
    'a subscribe (%s) on its way when close() is called runs no handler and has settled when close() resolves',
    async (_kind, options) => {
      await t.wharf.createTopic('t', { partitions: 2 });
      await t.wharf.publish('t', [
        { payload: 1, partition: 0 },
        { payload: 2, partition: 1 },
      ]);
      let handled = 0;
      const starting = t.wharf.subscribe('t', options, () => void handled++);
      const outcome = await settledByClose(starting, t.wharf.close());
      expect([{ code: 'CLOSED' }, { endedWith: null }]).toContainEqual(outcome);
      expect(handled).toBe(0);
      await expect(t.wharf.subscribe('t', options, () => undefined)).rejects.toMatchObject({ code: 'CLOSED' });
    },
  );

  it('a consume on its way when close() is called runs no handler and has settled when close() resolves', async () => {
    await t.wharf.createQueue('q');
    await t.wharf.publish('q', [{ payload: 1 }, { payload: 2 }]);
    let handled = 0;
    const starting = t.wharf.consume('q', { concurrency: 2 }, () => void handled++);
    const outcome = await settledByClose(starting, t.wharf.close());
    expect([{ code: 'CLOSED' }, { endedWith: null }]).toContainEqual(outcome);
    expect(handled).toBe(0);
    await expect(t.wharf.consume('q', {}, () => undefined)).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
