// takeSettledRuns (src/server/native/handlers/flow.ts): a SETTLE_BATCH run may name up to 2^32
// delivery ids. The work must be bounded by the deliveries pending, or one frame holds the event
// loop, and every other client with it, for hours.
import { describe, expect, it } from 'vitest';
import { ChurnMap } from '../../src/common/index.js';
import { takeSettledRuns } from '../../src/server/native/handlers/flow.js';
import type { FlowState, PendingDelivery } from '../../src/server/native/flow-state.js';

/** A pending table that counts lookups and refuses to be walked id by id past a bound. */
class CountingPending extends ChurnMap<number, PendingDelivery> {
  lookups = 0;
  override get(id: number): PendingDelivery | undefined {
    if (++this.lookups > 100_000) throw new Error('walked the run id by id');
    return super.get(id);
  }
}

function flowWith(ids: number[]): { flow: FlowState; pending: CountingPending } {
  const pending = new CountingPending();
  for (const id of ids) pending.set(id, { id } as unknown as PendingDelivery);
  return { flow: { pending } as unknown as FlowState, pending };
}

const idsOf = (settled: PendingDelivery[]): number[] => settled.map((p) => (p as unknown as { id: number }).id);

describe('SETTLE_BATCH runs', () => {
  it('runs of billions of ids cost what is pending, and take exactly what they cover, in id order', () => {
    const { flow, pending } = flowWith([7, 2, 100, 5_000_000_000 % 0xffffffff, 0xfffffffe, 40]);
    const settled = takeSettledRuns(flow, [50, 0xffffffff - 50, 1, 10, 30, 10]);
    expect(idsOf(settled)).toEqual([2, 7, 100, 5_000_000_000 % 0xffffffff, 0xfffffffe]);
    expect([...pending.keys()]).toEqual([40]);
    expect(pending.lookups).toBeLessThan(100);
  });

  it('short runs are walked id by id, overlapping runs settle each delivery once', () => {
    const { flow, pending } = flowWith([1, 2, 3, 4, 9]);
    const settled = takeSettledRuns(flow, [1, 3, 2, 3, 9, 1]);
    expect(idsOf(settled)).toEqual([1, 2, 3, 4, 9]);
    expect(pending.size).toBe(0);
  });

  it('empty runs and runs past every pending id take nothing', () => {
    const { flow, pending } = flowWith([5]);
    expect(takeSettledRuns(flow, [1, 0, 6, 0xfffffff0])).toEqual([]);
    expect(pending.size).toBe(1);
  });
});
