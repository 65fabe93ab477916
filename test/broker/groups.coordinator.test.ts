// Group membership and rebalancing, driven by a ManualClock: each partition has exactly one owner,
// partitions move only after their old owner settled them, silent members expire, zombies are fenced.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/index.js';
import type { Journal, Storage } from '../../src/storage/index.js';
import { GroupCoordinator, rangeAssignment, roundRobinAssignment } from '../../src/broker/topics/group-coordinator.js';
import type { GroupMember, PartitionGrant } from '../../src/broker/topics/group-coordinator.js';
import { OffsetStore } from '../../src/broker/topics/offset-store.js';

/** Just enough storage for an OffsetStore: one journal kept in an array (survives "reopen"). */
function journalStorage(
  kept: Uint8Array[] = [],
  gate: { write: Promise<void> } = { write: Promise.resolve() },
): Storage {
  const journal: Journal = {
    append: async (e) => {
      await gate.write; // a slow disk, when a test holds it
      kept.push(e);
    },
    rewrite: async (es) => void kept.splice(0, kept.length, ...es),
    entries: () => [...kept],
    get sizeBytes() {
      return kept.reduce((n, e) => n + e.length, 0);
    },
    close: async () => undefined,
  };
  return { openJournal: async () => journal } as unknown as Storage;
}

class FakeMember implements GroupMember {
  owned = new Set<number>();
  /** The assignment epoch of each partition's latest grant, which its commits carry. */
  epochOf = new Map<number, number>();
  events: string[] = [];
  revokeGate: Promise<void> = Promise.resolve();
  expired = false;
  constructor(
    readonly memberId: string,
    readonly sessionTimeoutMs = 1000,
  ) {}
  onAssign(grants: readonly PartitionGrant[]): void {
    for (const g of grants) {
      this.owned.add(g.partition);
      this.epochOf.set(g.partition, g.assignmentEpoch);
    }
    this.events.push(`assign ${grants.map((g) => g.partition).join(',')}`);
  }
  /** A commit of this member's fetcher for partition p under its latest grant. */
  commit(coord: GroupCoordinator, p: number, offset: number): Promise<boolean> {
    return coord.commit(this.memberId, p, this.epochOf.get(p) ?? 0, offset);
  }
  async onRevoke(ps: number[]): Promise<void> {
    this.events.push(`revoking ${ps.join(',')}`);
    await this.revokeGate;
    for (const p of ps) this.owned.delete(p);
    this.events.push(`revoked ${ps.join(',')}`);
  }
  onExpired(): void {
    this.expired = true;
    this.owned.clear();
  }
  lowestUnsettledOffset(): number | null {
    return null; // no fetcher: nothing in flight
  }
}

async function setup(partitions = 6) {
  const clock = new ManualClock();
  /** Offset writes wait for `disk.write` (resolved: no wait). */
  const disk = { write: Promise.resolve() };
  const offsets = await OffsetStore.open(journalStorage([], disk), { fsync: 'always', fsyncIntervalMs: 1000 });
  return { clock, offsets, disk, coord: new GroupCoordinator('orders', 'billing', partitions, clock, offsets) };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

function expectExactlyOneOwner(coord: GroupCoordinator, members: FakeMember[], partitions: number): void {
  for (let p = 0; p < partitions; p++) {
    const holders = members.filter((m) => m.owned.has(p));
    expect(holders.length, `partition ${p}`).toBe(1);
    expect(coord.owner(p)).toBe(holders[0].memberId);
  }
}

describe('consumer group coordinator', () => {
  it('3 members joining share 6 partitions, two each, every partition owned exactly once', async () => {
    const { coord } = await setup();
    const ms = ['a', 'b', 'c'].map((id) => new FakeMember(id));
    for (const m of ms) await coord.join(m);
    expectExactlyOneOwner(coord, ms, 6);
    expect(ms.map((m) => m.owned.size)).toEqual([2, 2, 2]);
  });

  it('a partition moves to its new owner only after the old owner has settled it', async () => {
    const { coord } = await setup(2);
    const a = new FakeMember('a');
    await coord.join(a);
    let release!: () => void;
    a.revokeGate = new Promise((r) => (release = r));
    const b = new FakeMember('b');
    const joined = coord.join(b);
    await new Promise((r) => setTimeout(r, 10));
    expect(a.events).toContain('revoking 1');
    expect(b.owned.size).toBe(0); // not before a settled
    release();
    await joined;
    expect(b.owned).toEqual(new Set([1]));
    expect(a.owned).toEqual(new Set([0]));
  });

  it('a member that leaves hands its partitions to the others', async () => {
    const { coord } = await setup();
    const ms = ['a', 'b', 'c'].map((id) => new FakeMember(id));
    for (const m of ms) await coord.join(m);
    await coord.leave('b');
    expect(ms[1].owned.size).toBe(0);
    expectExactlyOneOwner(coord, [ms[0], ms[2]], 6);
    expect(coord.memberCount).toBe(2);
  });

  it('a silent member expires after its session timeout; heartbeating members stay', async () => {
    const { coord, clock } = await setup();
    const ms = ['a', 'b', 'c'].map((id) => new FakeMember(id, 1000));
    for (const m of ms) await coord.join(m);
    for (let t = 0; t < 5; t++) {
      clock.advance(300);
      coord.heartbeat('a');
      coord.heartbeat('c'); // b stays silent
    }
    await new Promise((r) => setTimeout(r, 10));
    expect(ms[1].expired).toBe(true);
    expect(ms[0].expired || ms[2].expired).toBe(false);
    expectExactlyOneOwner(coord, [ms[0], ms[2]], 6);
    expect(coord.heartbeat('b')).toBe(false); // it must rejoin
  });

  it('a member that expires and rejoins under the same id before the rebalance runs gets its partitions again', async () => {
    const { coord, clock } = await setup(4);
    const a = new FakeMember('a', 60_000);
    const b = new FakeMember('b', 1000);
    await coord.join(a);
    await coord.join(b); // a: 0,2  b: 1,3
    // c joins while a is slow to settle the partition it hands over, so that rebalance is still running ...
    let release!: () => void;
    a.revokeGate = new Promise((r) => (release = r));
    const c = new FakeMember('c', 60_000);
    const joined = coord.join(c);
    await new Promise((r) => setTimeout(r, 10));
    // ... when b falls silent long enough to expire, and rejoins (alive) on its next heartbeat.
    for (let t = 0; t < 4; t++) {
      clock.advance(400);
      coord.heartbeat('a');
      coord.heartbeat('c');
    }
    expect(b.expired).toBe(true);
    expect(coord.owner(1)).toBeNull(); // freed at expiry, not at the next rebalance
    expect(await b.commit(coord, 1, 1)).toBe(false);
    b.expired = false;
    const rejoined = coord.join(b);
    release();
    await joined;
    await rejoined;
    expectExactlyOneOwner(coord, [a, b, c], 4);
  });

  it('fences commits from a member that no longer owns the partition', async () => {
    const { coord, clock, offsets } = await setup(1);
    const a = new FakeMember('a', 500);
    await coord.join(a);
    expect(await a.commit(coord, 0, 5)).toBe(true);
    clock.advance(600);
    await new Promise((r) => setTimeout(r, 10));
    const b = new FakeMember('b', 500);
    await coord.join(b);
    expect(await a.commit(coord, 0, 99)).toBe(false);
    expect(offsets.get('orders', 'billing', 0)).toBe(5);
    expect(await b.commit(coord, 0, 7)).toBe(true);
    expect(offsets.get('orders', 'billing', 0)).toBe(7);
  });

  it("fences a commit made under an earlier grant, also when the partition is the same member's again", async () => {
    const { coord, clock, offsets } = await setup(2);
    const a = new FakeMember('a', 500);
    await coord.join(a);
    const firstGrant = a.epochOf.get(1)!;
    // b joins; a never settles partition 1 (a handler stuck), so the revoke gives up after a's session timeout.
    a.revokeGate = new Promise(() => undefined);
    const b = new FakeMember('b', 500);
    const joined = coord.join(b);
    await new Promise((r) => setTimeout(r, 10));
    clock.advance(300);
    coord.heartbeat('a'); // both stay alive
    coord.heartbeat('b');
    clock.advance(200);
    await joined;
    expect(coord.owner(1)).toBe('b');
    expect(await b.commit(coord, 1, 10)).toBe(true);
    // b leaves: partition 1 is a's again, under a new grant
    a.revokeGate = Promise.resolve();
    await coord.leave('b');
    expect(coord.owner(1)).toBe('a');
    expect(a.epochOf.get(1)).not.toBe(firstGrant);
    // the fetcher of a's first grant, still running, commits the offset it reached: refused
    expect(await coord.commit('a', 1, firstGrant, 1)).toBe(false);
    expect(offsets.get('orders', 'billing', 1)).toBe(10);
    expect(await a.commit(coord, 1, 11)).toBe(true);
    expect(offsets.get('orders', 'billing', 1)).toBe(11);
  });

  it('a seek that fails to resolve an offset still gives every partition back to its owner', async () => {
    const { coord, offsets } = await setup(4);
    const ms = ['a', 'b'].map((id) => new FakeMember(id));
    for (const m of ms) await coord.join(m);
    await ms[0].commit(coord, 0, 5);
    const failing = coord.seek(async (p) => {
      if (p === 2) throw new Error('the log is closed');
      return 0;
    });
    await expect(failing).rejects.toThrow('the log is closed');
    expectExactlyOneOwner(coord, ms, 4);
    expect(ms.map((m) => m.events.at(-1))).toEqual(['assign 0,2', 'assign 1,3']);
    expect(offsets.get('orders', 'billing', 0)).toBe(5); // nothing moved: offsets are resolved before any commit
  });

  it('committed offsets survive reopening the offset store', async () => {
    const kept: Uint8Array[] = [];
    const s1 = await OffsetStore.open(journalStorage(kept), { fsync: 'always', fsyncIntervalMs: 1000 });
    await s1.commit('orders', 'billing', 2, 42);
    await s1.commit('orders', 'billing', 2, 43);
    await s1.commit('orders', 'audit', 0, 1);
    const s2 = await OffsetStore.open(journalStorage(kept), { fsync: 'always', fsyncIntervalMs: 1000 });
    expect(s2.get('orders', 'billing', 2)).toBe(43);
    expect(s2.get('orders', 'audit', 0)).toBe(1);
    expect(s2.get('orders', 'billing', 0)).toBeUndefined();
    await s2.deleteTopic('orders');
    const s3 = await OffsetStore.open(journalStorage(kept), { fsync: 'always', fsyncIntervalMs: 1000 });
    expect(s3.get('orders', 'billing', 2)).toBeUndefined();
  });

  it('round-robin and range strategies match Kafka assignors', () => {
    expect(roundRobinAssignment(['a', 'b'], 5)).toEqual(['a', 'b', 'a', 'b', 'a']);
    expect(rangeAssignment(['a', 'b'], 5)).toEqual(['a', 'a', 'a', 'b', 'b']);
    expect(rangeAssignment([], 2)).toEqual([null, null]);
  });

  it('a commit whose write is slow holds its partition: the next owner gets it once the write landed, and starts from it', async () => {
    const { coord, offsets, disk } = await setup(1);
    const b = new FakeMember('b'); // 'a' sorts first: the partition moves to a when it joins
    await coord.join(b);
    let land!: () => void;
    disk.write = new Promise((r) => (land = r));
    const committing = b.commit(coord, 0, 5); // checked under b's grant; its write waits for the disk
    let startedAt: number | undefined;
    const a = new FakeMember('a');
    a.onAssign = (grants) => {
      startedAt = coord.committed(0); // where a's fetcher would start
      FakeMember.prototype.onAssign.call(a, grants);
    };
    const joined = coord.join(a);
    await tick();
    expect(b.events).toContain('revoked 0'); // b is done with it ...
    expect(coord.owner(0)).toBeNull(); // ... but its commit has not landed: nobody gets the partition yet
    expect(a.owned.size).toBe(0);
    land();
    expect(await committing).toBe(true);
    await joined;
    expect(coord.owner(0)).toBe('a');
    expect(startedAt).toBe(5);
    expect(offsets.get('orders', 'billing', 0)).toBe(5);
  });

  it('a held commit of an expired member keeps its partition from the next owner until it is released', async () => {
    const { coord, clock } = await setup(2);
    const a = new FakeMember('a', 500);
    const b = new FakeMember('b', 60_000);
    await coord.join(a);
    await coord.join(b); // a: 0, b: 1
    const release = coord.holdCommit('a', 0, a.epochOf.get(0)!, 3)!; // a transaction of a is being written
    expect(release).not.toBeNull();
    clock.advance(600); // a falls silent and expires; the rebalance gives partition 0 to b ...
    coord.heartbeat('b');
    await tick();
    expect(a.expired).toBe(true);
    expect(coord.owner(0)).toBeNull(); // ... once a's commit is settled
    expect(b.owned).toEqual(new Set([1]));
    release(false);
    await tick();
    expect(coord.owner(0)).toBe('b');
    expect(b.owned).toEqual(new Set([0, 1]));
  });

  it('holdCommit refuses a grant that is not current, and a seek waits for a held commit before it commits', async () => {
    const { coord, offsets } = await setup(1);
    const a = new FakeMember('a');
    await coord.join(a);
    const epoch = a.epochOf.get(0)!;
    expect(coord.holdCommit('a', 0, epoch + 1, 4)).toBeNull();
    expect(coord.holdCommit('b', 0, epoch, 4)).toBeNull();
    const release = coord.holdCommit('a', 0, epoch, 4)!;
    const seeking = coord.seek(async () => 9);
    await tick();
    expect(coord.owner(0)).toBeNull(); // revoked, not yet sought: the held commit still has to land
    expect(offsets.get('orders', 'billing', 0)).toBeUndefined();
    await offsets.commit('orders', 'billing', 0, 4); // what the transaction writes
    release(true);
    await seeking;
    expect(offsets.get('orders', 'billing', 0)).toBe(9); // the seek's offset, not overwritten by the late commit
    expect(coord.owner(0)).toBe('a');
    expect(a.epochOf.get(0)).not.toBe(epoch);
    expect(coord.isCurrentGrant('a', 0, epoch)).toBe(false);
  });

  it('a member’s commit never lands below a higher one of its grant checked before it: it waits for that one, and is written only if it failed', async () => {
    const { coord, offsets } = await setup(1);
    const a = new FakeMember('a');
    await coord.join(a);
    const epoch = a.epochOf.get(0)!;
    const committed = (): number | undefined => offsets.get('orders', 'billing', 0);
    // A transaction of a commits offset 6 under its grant: checked, and being written.
    const release = coord.holdCommit('a', 0, epoch, 6)!;
    let settled = false;
    const lower = a.commit(coord, 0, 4).then((ok) => ((settled = true), ok));
    await tick();
    expect(settled).toBe(false);
    await offsets.commit('orders', 'billing', 0, 6);
    release(true);
    expect(await lower).toBe(true);
    expect(committed()).toBe(6); // not moved back to 4
    expect(coord.committedUnderGrant(0, epoch)).toBe(6);
    expect(await a.commit(coord, 0, 5)).toBe(true);
    expect(committed()).toBe(6);
    expect(await a.commit(coord, 0, 7)).toBe(true);
    expect(committed()).toBe(7);
    // A higher commit that fails holds back nothing.
    const failing = coord.holdCommit('a', 0, epoch, 9)!;
    const next = a.commit(coord, 0, 8);
    failing(false);
    expect(await next).toBe(true);
    expect(committed()).toBe(8);
    expect(coord.committedUnderGrant(0, epoch)).toBe(8);
    // Another grant starts with nothing written under it.
    await coord.seek(async () => 2);
    const again = a.epochOf.get(0)!;
    expect(coord.committedUnderGrant(0, again)).toBe(-1);
    expect(await a.commit(coord, 0, 3)).toBe(true);
    expect(committed()).toBe(3);
  });
});
