// Membership of one consumer group on one topic: who owns which partition, rebalancing when members
// join, leave or fall silent (session timeout), and fencing commits of members that lost a partition.
// Each grant of a partition has its own assignment epoch (Kafka's generation, per partition); a commit
// must carry the epoch of the grant it was made under, so a fetcher left over from an earlier grant of
// the same partition to the same member (a revoke that timed out) cannot move the offset back.
// A member is only { memberId, sessionTimeoutMs, onAssign, onRevoke, onExpired, lowestUnsettledOffset }
// plus heartbeats, so an embedded subscription and (later) a remote client proxied by the server look
// the same here.
// Rebalances are incremental: only partitions whose owner changes stop, and each one is settled and
// committed by its old owner (onRevoke) before the new owner gets it, so a rebalance causes no redelivery.
// A commit checked against its grant holds the partition's next grant until its write has landed
// (holdCommit), so the next owner always starts from it: also a transaction's, whose write waits for
// its intent. A member's own commit never lands over a higher one of its grant checked before it
// (a transaction's), so reordering never moves a grant's committed offset back.
import { assert } from '../../common/index.js';
import type { Clock, TimerHandle } from '../../common/index.js';
import type { OffsetStore } from './offset-store.js';

/** A partition handed to a member, and the epoch its commits for this grant must carry. */
export interface PartitionGrant {
  readonly partition: number;
  readonly assignmentEpoch: number;
}

export interface GroupMember {
  readonly memberId: string;
  readonly sessionTimeoutMs: number;
  /** Partitions this member now owns; it starts fetching at the committed offset. */
  onAssign(grants: readonly PartitionGrant[]): void;
  /** Stop these partitions: settle in-flight messages and commit, then resolve. */
  onRevoke(partitions: number[]): Promise<void>;
  /** The session expired: the member is out of the group and must stop without committing. */
  onExpired(): void;
  /**
   * The lowest offset of the partition its fetcher for this grant has not settled yet (every offset
   * below it is settled); null when the member runs no fetcher for the grant (any more).
   */
  lowestUnsettledOffset(partition: number, assignmentEpoch: number): number | null;
}

/** Owner per partition for a sorted list of member ids. */
export type AssignmentStrategy = (memberIds: readonly string[], partitionCount: number) => Array<string | null>;

/** Kafka's RoundRobinAssignor for one topic: partition p goes to member p mod n. */
export const roundRobinAssignment: AssignmentStrategy = (memberIds, partitionCount) => {
  const owners: Array<string | null> = [];
  for (let p = 0; p < partitionCount; p++) owners.push(memberIds.length === 0 ? null : memberIds[p % memberIds.length]);
  return owners;
};

/** Kafka's RangeAssignor for one topic: contiguous ranges, the first members take one extra. */
export const rangeAssignment: AssignmentStrategy = (memberIds, partitionCount) => {
  const owners: Array<string | null> = new Array(partitionCount).fill(null);
  const n = memberIds.length;
  if (n === 0) return owners;
  const per = Math.floor(partitionCount / n);
  const extra = partitionCount % n;
  let p = 0;
  for (let i = 0; i < n; i++) {
    const count = per + (i < extra ? 1 : 0);
    for (let k = 0; k < count; k++) owners[p++] = memberIds[i];
  }
  return owners;
};

interface MemberState {
  member: GroupMember;
  lastSeenMs: number;
  timer: TimerHandle | null;
}

/** A commit that passed the fence and whose write has not settled yet (holdCommit). */
interface PendingCommit {
  readonly assignmentEpoch: number;
  readonly offset: number;
  readonly settled: Promise<void>;
}

/** The highest offset written by a commit under one grant of a partition (-1: none yet). */
interface GrantCommitted {
  assignmentEpoch: number;
  offset: number;
}

export class GroupCoordinator {
  private readonly members = new Map<string, MemberState>();
  private readonly owners: Array<string | null>;
  /** Per partition: bumped by every grant, so each grant's commits are told apart from earlier ones'. */
  private readonly assignmentEpochs: number[];
  /** Per partition: commits that passed the fence and whose write has not settled yet (holdCommit). */
  private readonly pendingCommits: Array<Set<PendingCommit>>;
  /** Per partition: what its latest grant has written (committedUnderGrant). */
  private readonly grantCommitted: GrantCommitted[];
  /** Rebalances and seeks run one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  /** Bumped by every completed rebalance. */
  generation = 0;

  constructor(
    readonly topic: string,
    readonly group: string,
    readonly partitionCount: number,
    private readonly clock: Clock,
    private readonly offsets: OffsetStore,
    private readonly strategy: AssignmentStrategy = roundRobinAssignment,
  ) {
    this.owners = new Array(partitionCount).fill(null);
    this.assignmentEpochs = new Array(partitionCount).fill(0);
    this.pendingCommits = Array.from({ length: partitionCount }, () => new Set<PendingCommit>());
    this.grantCommitted = Array.from({ length: partitionCount }, () => ({ assignmentEpoch: 0, offset: -1 }));
  }

  get memberCount(): number {
    return this.members.size;
  }

  owner(partition: number): string | null {
    return this.owners[partition];
  }

  committed(partition: number): number | undefined {
    return this.offsets.get(this.topic, this.group, partition);
  }

  /** Adds a member; resolves once the rebalance that gives it its partitions is done. */
  join(member: GroupMember): Promise<void> {
    const state: MemberState = { member, lastSeenMs: this.clock.now(), timer: null };
    this.members.set(member.memberId, state);
    this.armSessionTimer(state);
    return this.rebalance();
  }

  /** Removes a member cleanly: its partitions are settled and committed, then handed to the others. */
  leave(memberId: string): Promise<void> {
    return this.enqueue(async () => {
      const state = this.members.get(memberId);
      if (state === undefined) return;
      state.timer?.cancel();
      const owned = this.ownedBy(memberId);
      if (owned.length > 0) await this.revoke(state.member, owned);
      this.members.delete(memberId);
      await this.assign();
    });
  }

  /** Records liveness. False: the member is not (or no longer) in the group and must rejoin. */
  heartbeat(memberId: string): boolean {
    const state = this.members.get(memberId);
    if (state === undefined) return false;
    state.lastSeenMs = this.clock.now();
    return true;
  }

  /**
   * A member's own commit (its fetcher's): written if the member still owns the partition under the
   * grant the commit was made for; a fenced zombie's commit is refused (false), also one from an
   * earlier grant to the same member. A commit below one of the same grant that was checked before
   * it (a transaction's tx.commitOffset, written or being written) is not written (true): queued
   * behind an earlier write of the member, it would land after the transaction's and move the
   * group's offset back. It waits for such a higher commit still being written, and is written
   * after all when that one failed.
   */
  async commit(memberId: string, partition: number, assignmentEpoch: number, offset: number): Promise<boolean> {
    for (;;) {
      if (!this.isCurrentGrant(memberId, partition, assignmentEpoch)) return false;
      const higher = [...this.pendingCommits[partition]].filter(
        (c) => c.assignmentEpoch === assignmentEpoch && c.offset > offset,
      );
      if (higher.length === 0) break;
      await Promise.all(higher.map((c) => c.settled));
    }
    if (offset < this.committedUnderGrant(partition, assignmentEpoch)) return true;
    const release = this.holdCommit(memberId, partition, assignmentEpoch, offset)!;
    let written = false;
    try {
      await this.offsets.commit(this.topic, this.group, partition, offset);
      written = true;
    } finally {
      release(written);
    }
    return true;
  }

  /**
   * The highest offset a commit under this grant of the partition has written (the member's own or a
   * transaction's), -1 when none has or the partition was granted again since. While a message of
   * the grant is unsettled the member commits no further than it, so an offset past it here is the
   * commit of a transaction (tx.commitOffset): the fetcher then takes the message as consumed.
   */
  committedUnderGrant(partition: number, assignmentEpoch: number): number {
    const c = this.grantCommitted[partition];
    return c.assignmentEpoch === assignmentEpoch ? c.offset : -1;
  }

  /** Whether this grant (member and assignment epoch) is the partition's current one: the fence of every commit. */
  isCurrentGrant(memberId: string, partition: number, assignmentEpoch: number): boolean {
    return this.owners[partition] === memberId && this.assignmentEpochs[partition] === assignmentEpoch;
  }

  /**
   * The lowest offset not settled yet under this grant, asked of its member (a transaction commits
   * no offset past it: BrokerHost); null when the grant is not current or its fetcher is gone.
   */
  lowestUnsettledOffset(memberId: string, partition: number, assignmentEpoch: number): number | null {
    if (!this.isCurrentGrant(memberId, partition, assignmentEpoch)) return null;
    const state = this.members.get(memberId);
    return state === undefined ? null : state.member.lowestUnsettledOffset(partition, assignmentEpoch);
  }

  /**
   * Fences a commit of `offset` under a grant and keeps it from being overtaken: null unless the
   * grant is current; otherwise, until the returned release is called, the partition is not granted
   * again and a seek does not commit over it. A commit is checked first and written later (the
   * offset is durable first, and a transaction's intent before it): a rebalance in between would
   * otherwise hand the partition to a new owner that starts from the offset before this commit,
   * which then lands, and messages would be processed twice (or an older offset would overwrite the
   * new owner's). Holds are taken only under the current grant, so once a revoke or an expiry has
   * cleared the owner no new one starts: waiting for those taken is bounded by their own writes.
   * The release says whether the offset was written (committedUnderGrant); only its first call counts.
   */
  holdCommit(
    memberId: string,
    partition: number,
    assignmentEpoch: number,
    offset: number,
  ): ((written: boolean) => void) | null {
    if (!this.isCurrentGrant(memberId, partition, assignmentEpoch)) return null;
    const holds = this.pendingCommits[partition];
    let settle!: () => void;
    const hold: PendingCommit = {
      assignmentEpoch,
      offset,
      settled: new Promise<void>((resolve) => (settle = resolve)),
    };
    holds.add(hold);
    return (written) => {
      if (!holds.delete(hold)) return;
      // No grant is made while a hold is pending (assign asserts it): this is still the latest grant.
      const c = this.grantCommitted[partition];
      if (written && (c.assignmentEpoch !== assignmentEpoch || c.offset < offset)) {
        c.assignmentEpoch = assignmentEpoch;
        c.offset = offset;
      }
      settle();
    };
  }

  /**
   * Moves every partition to new offsets: owners settle and stop, the offsets are committed, and the
   * same owners restart from them. A seek that fails still restarts them (from what is committed), so
   * it never leaves the group's partitions owned by nobody.
   */
  seek(offsetFor: (partition: number) => Promise<number>): Promise<void> {
    return this.enqueue(async () => {
      const byMember = this.ownersByMember();
      await Promise.all([...byMember].map(([id, ps]) => this.revoke(this.members.get(id)!.member, ps)));
      try {
        // Every offset is resolved before any is committed, so a failed resolve moves no partition.
        const offsets: number[] = [];
        for (let p = 0; p < this.partitionCount; p++) offsets.push(await offsetFor(p));
        // Every partition is ownerless now: a commit still landing from before would overwrite the seek.
        await this.commitsSettled();
        for (let p = 0; p < this.partitionCount; p++) await this.offsets.commit(this.topic, this.group, p, offsets[p]);
      } finally {
        await this.assign();
      }
    });
  }

  /** Stops the group (topic deleted or broker closing): members are told to stop, nothing is reassigned. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.members.values()) s.timer?.cancel();
    await this.enqueue(async () => {
      const byMember = this.ownersByMember();
      await Promise.all([...byMember].map(([id, ps]) => this.revoke(this.members.get(id)!.member, ps)));
      this.members.clear();
    });
  }

  private rebalance(): Promise<void> {
    return this.enqueue(() => this.assign());
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Moves partitions to the strategy's target owners: revoke from old owners first, then assign. */
  private async assign(): Promise<void> {
    if (this.closed) return;
    const ids = [...this.members.keys()].sort();
    const target = this.strategy(ids, this.partitionCount);
    const revokes = new Map<string, number[]>();
    for (let p = 0; p < this.partitionCount; p++) {
      const current = this.owners[p];
      if (current !== null && current !== target[p]) {
        if (this.members.has(current)) {
          let list = revokes.get(current);
          if (list === undefined) revokes.set(current, (list = []));
          list.push(p);
        } else {
          this.owners[p] = null; // the old owner expired: nothing to settle
        }
      }
    }
    await Promise.all([...revokes].map(([id, ps]) => this.revoke(this.members.get(id)!.member, ps)));
    await this.commitsSettled();
    // Membership may have changed while revoking; the next queued rebalance corrects it.
    const grants = new Map<string, PartitionGrant[]>();
    for (let p = 0; p < this.partitionCount; p++) {
      const t = target[p];
      if (this.owners[p] === null && t !== null && this.members.has(t)) {
        // The new owner reads the committed offset now (onAssign): every commit of an earlier grant must have landed.
        assert(
          this.pendingCommits[p].size === 0,
          `partition ${p} is granted while a commit of its last grant is pending`,
        );
        this.owners[p] = t;
        const assignmentEpoch = ++this.assignmentEpochs[p];
        let list = grants.get(t);
        if (list === undefined) grants.set(t, (list = []));
        list.push({ partition: p, assignmentEpoch });
      }
    }
    this.generation++;
    for (const [id, ps] of grants) this.members.get(id)!.member.onAssign(ps);
  }

  /** Takes partitions from a member after it settled them, or after its session timeout at most. */
  private async revoke(member: GroupMember, partitions: number[]): Promise<void> {
    let timer: TimerHandle | null = null;
    const timedOut = new Promise<void>((resolve) => {
      timer = this.clock.setTimer(member.sessionTimeoutMs, resolve);
    });
    // Ownership is kept while the member settles (its final commit must land) and cleared afterwards,
    // also on timeout, so a slow member's late commits are fenced rather than applied over the next owner's.
    try {
      await Promise.race([member.onRevoke(partitions), timedOut]);
    } finally {
      (timer as TimerHandle | null)?.cancel();
      for (const p of partitions) if (this.owners[p] === member.memberId) this.owners[p] = null;
    }
  }

  /**
   * Resolves once no partition without an owner has a commit pending (holdCommit). Such a partition
   * takes no new hold, but one may lose its owner (an expiry) while we wait: hence the loop. Grants
   * follow it without an await, so no partition loses its owner in between.
   */
  private async commitsSettled(): Promise<void> {
    for (;;) {
      const pending: Array<Promise<void>> = [];
      for (let p = 0; p < this.partitionCount; p++)
        if (this.owners[p] === null) for (const c of this.pendingCommits[p]) pending.push(c.settled);
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  private ownedBy(memberId: string): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.partitionCount; p++) if (this.owners[p] === memberId) out.push(p);
    return out;
  }

  private ownersByMember(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (let p = 0; p < this.partitionCount; p++) {
      const id = this.owners[p];
      if (id === null || !this.members.has(id)) continue;
      let list = out.get(id);
      if (list === undefined) out.set(id, (list = []));
      list.push(p);
    }
    return out;
  }

  private armSessionTimer(state: MemberState): void {
    const dueInMs = state.lastSeenMs + state.member.sessionTimeoutMs - this.clock.now();
    state.timer = this.clock.setTimer(Math.max(1, dueInMs), () => {
      if (this.members.get(state.member.memberId) !== state || this.closed) return;
      if (this.clock.now() - state.lastSeenMs >= state.member.sessionTimeoutMs) {
        this.expire(state);
      } else {
        this.armSessionTimer(state);
      }
    });
  }

  private expire(state: MemberState): void {
    const memberId = state.member.memberId;
    this.members.delete(memberId);
    // Its partitions are free now, not at the queued rebalance: a rejoin under the same id before that
    // runs would otherwise look like an owner keeping them (nothing granted, so nobody fetches them),
    // and the expired member's late commits would still pass the fence.
    for (const p of this.ownedBy(memberId)) this.owners[p] = null;
    state.member.onExpired();
    // Nobody awaits a timer-driven rebalance; a failure leaves the next membership change to fix it.
    this.rebalance().catch(() => undefined);
  }
}
