// The queue state machine over log offsets, with no I/O: which offsets are settled, which are
// leased or waiting for a retry, where the next never-delivered message is, and (FIFO) which
// groups are held. Every change is also emitted as a journal op, so a replay rebuilds the state.
//
// Memory: settled offsets are ranges; only tracked (delivered, unsettled) and FIFO-held messages
// are individual objects, and both are bounded by the engine (in-flight and held limits).
import { assert, ChurnMap } from '../../common/index.js';
import { RangeSet } from './range-set.js';
import { OpsBuffer, type JournalOp, type StateSnapshot } from './queue-journal.js';

/** settling: its lease is over and it is being dead-lettered; no receipt settles it, no take delivers it. */
export type TrackedState = 'inflight' | 'waiting' | 'visible' | 'settling';

/** A message that has been delivered at least once and is not settled. */
export interface Tracked {
  key: number;
  level: number;
  offset: number;
  deliveryCount: number;
  firstDeliveredAt: number;
  lastDeliveredAt: number;
  state: TrackedState;
  /** inflight: lease end; waiting: when it becomes visible again. */
  dueMs: number;
  /** Identifies the current delivery; a receipt with another token is stale. */
  token: number;
  /** FIFO group; undefined until the record has been read. */
  groupId: string | undefined;
  bytes: number;
  lastError: string | undefined;
  /** Timer key of the lease batch holding this delivery's expiry (lease-book.ts), 0 when none. */
  leaseBatch: number;
}

export interface LevelState {
  settled: RangeSet;
  startOffset: number;
  endOffset: number;
  /** Offsets below the cursor were delivered, settled or held at least once. */
  cursor: number;
}

interface Group {
  tracked: number | null;
  held: number[]; // offsets at level 0, ascending
}

export function trackedKey(level: number, offset: number): number {
  return offset * 16 + level;
}

/** The level of a tracked key (trackedKey's inverse). */
export function trackedLevel(key: number): number {
  return key % 16;
}

/** The offset of a tracked key (trackedKey's inverse). */
export function trackedOffset(key: number): number {
  return (key - trackedLevel(key)) / 16;
}

export class QueueState {
  readonly levels: LevelState[] = [];
  readonly delay: LevelState = { settled: new RangeSet(), startOffset: 0, endOffset: 0, cursor: 0 };
  /** Churn: an entry per message in flight (common/churn-map.ts). */
  readonly tracked = new ChurnMap<number, Tracked>();
  /** Per level: keys of tracked messages visible again, redelivered before the cursor moves on. */
  readonly visible: number[][] = [];
  private readonly groups = new Map<string, Group>();
  /** FIFO groups with held messages and nothing tracked: their head may be delivered. */
  readonly freeGroups = new Set<string>();
  heldCount = 0;
  inFlightCount = 0;
  /**
   * Messages leased by a hand-off (queue-handoff.ts) whose append is not yet durable: counted in
   * inFlightCount, not yet in their level's endOffset. Stats leave them out of inFlight (no consumer
   * can have them before the append is durable) and out of depth (messageCount does not reach them).
   */
  aheadCount = 0;
  waitingCount = 0;
  /** Tracked messages being dead-lettered: neither ready nor in flight. */
  settlingCount = 0;
  /** Ops not yet handed to the journal, already encoded. */
  readonly pendingOps = new OpsBuffer();
  private nextToken = 1;

  constructor(
    levelCount: number,
    /** Told the tracked count before each tracked message is forgotten (settled, purged, taken back). */
    private readonly onForget: (trackedCountBefore: number) => void = () => undefined,
  ) {
    for (let i = 0; i < levelCount; i++) {
      this.levels.push({ settled: new RangeSet(), startOffset: 0, endOffset: 0, cursor: 0 });
      this.visible.push([]);
    }
  }

  level(level: number): LevelState {
    return level === DELAY_LEVEL ? this.delay : this.levels[level];
  }

  /** Unsettled messages in a level's log. */
  unsettledIn(level: number): number {
    const l = this.level(level);
    return l.endOffset - l.startOffset - l.settled.countIn(l.startOffset, l.endOffset);
  }

  /** Unsettled messages in the priority logs (the delay log excluded). */
  messageCount(): number {
    let total = 0;
    for (let i = 0; i < this.levels.length; i++) total += this.unsettledIn(i);
    return total;
  }

  /** True when the offset has never been delivered-and-kept: not settled, not tracked. */
  isCandidate(level: number, offset: number): boolean {
    const l = this.levels[level];
    return (
      offset >= l.startOffset &&
      offset < l.endOffset &&
      !l.settled.has(offset) &&
      !this.tracked.has(trackedKey(level, offset))
    );
  }

  /** First offset at or after the cursor that is not settled (may still be tracked). */
  nextCursorOffset(level: number): number {
    const l = this.levels[level];
    l.cursor = l.settled.firstGapFrom(Math.max(l.cursor, l.startOffset));
    return l.cursor;
  }

  /** Records a delivery: a new lease with deliveryCount + 1 and a fresh receipt token. */
  deliver(
    level: number,
    offset: number,
    nowMs: number,
    leaseMs: number,
    groupId: string | undefined,
    bytes: number,
  ): Tracked {
    const key = trackedKey(level, offset);
    let t = this.tracked.get(key);
    if (t === undefined) {
      t = {
        key,
        level,
        offset,
        deliveryCount: 0,
        firstDeliveredAt: nowMs,
        lastDeliveredAt: nowMs,
        state: 'visible',
        dueMs: 0,
        token: 0,
        groupId,
        bytes,
        lastError: undefined,
        leaseBatch: 0,
      };
      this.tracked.set(key, t);
      if (groupId !== undefined) this.attachGroup(t);
    } else {
      assert(t.state === 'visible', `deliver of ${level}/${offset} in state ${t.state}`);
      this.unmarkState(t);
      if (t.groupId === undefined && groupId !== undefined) {
        t.groupId = groupId;
        this.attachGroup(t);
      }
    }
    // A message handed back uncounted (its delivery reached no one) is on its first delivery again.
    if (t.deliveryCount === 0) t.firstDeliveredAt = nowMs;
    t.deliveryCount++;
    t.lastDeliveredAt = nowMs;
    t.state = 'inflight';
    t.dueMs = nowMs + leaseMs;
    t.token = this.nextToken++;
    t.bytes = bytes;
    this.inFlightCount++;
    this.pendingOps.push('deliver', level, offset, t.deliveryCount, t.firstDeliveredAt, nowMs);
    return t;
  }

  /**
   * Takes back a hand-off's lease whose append failed: as if never delivered. No op is journaled:
   * its delivery record names an offset the log does not have, which recovery drops. (Should the
   * failed write reach the disk after all, recovery finds the message delivered once: at-least-once
   * holds, its delivery count is one high.)
   */
  undeliverAhead(t: Tracked): void {
    assert(
      t.state === 'inflight' && t.deliveryCount === 1,
      `undeliverAhead of ${t.level}/${t.offset} in state ${t.state}, delivery ${t.deliveryCount}`,
    );
    this.forget(t);
  }

  /** Puts a delivered message back: visible at visibleAtMs (now or later). */
  requeue(t: Tracked, visibleAtMs: number, countDelta = 0): void {
    this.unmarkState(t);
    t.deliveryCount = Math.max(0, t.deliveryCount + countDelta);
    if (t.deliveryCount === 0) t.firstDeliveredAt = 0; // never delivered after all: the next delivery is the first
    t.token = 0;
    t.state = 'waiting';
    t.dueMs = visibleAtMs;
    this.waitingCount++;
    this.pendingOps.push('nack', t.level, t.offset, t.deliveryCount, visibleAtMs, t.firstDeliveredAt);
  }

  /** A waiting message whose time has come (or an expired lease): eligible for redelivery. */
  makeVisible(t: Tracked): void {
    this.unmarkState(t);
    t.state = 'visible';
    t.token = 0;
    this.visible[t.level].push(t.key);
  }

  /**
   * Ends a lease (or a wait) before the message is dead-lettered: its receipt is no longer current,
   * so a second settle of it is refused while the dead letter is being written. makeVisible puts it
   * back should that write fail.
   */
  beginSettling(t: Tracked): void {
    this.unmarkState(t);
    t.state = 'settling';
    t.token = 0;
    this.settlingCount++;
  }

  /** The message is done (acked, dead-lettered, expired or dropped); it is never delivered again. */
  settle(level: number, offset: number): void {
    const l = this.level(level);
    l.settled.add(offset);
    this.pendingOps.push('settle', level, offset, 0, 0, 0);
    if (level === DELAY_LEVEL) return;
    const t = this.tracked.get(trackedKey(level, offset));
    if (t !== undefined) this.forget(t);
  }

  /** Settles every offset in [start, end) of a level (purge). */
  settleRange(level: number, start: number, end: number): void {
    if (end <= start) return;
    this.level(level).settled.addRange(start, end);
    this.pendingOps.push('settleRange', level, start, 0, end, 0);
    if (level === DELAY_LEVEL) return;
    for (const t of [...this.tracked.values()])
      if (t.level === level && t.offset >= start && t.offset < end) this.forget(t);
    if (level === 0) this.dropHeldBelow(end);
  }

  private forget(t: Tracked): void {
    this.unmarkState(t);
    const before = this.tracked.size;
    this.tracked.delete(t.key);
    if (t.groupId !== undefined) {
      const g = this.groups.get(t.groupId);
      if (g !== undefined && g.tracked === t.key) {
        g.tracked = null;
        this.refreshGroup(t.groupId, g);
      }
    }
    this.onForget(before);
  }

  private unmarkState(t: Tracked): void {
    if (t.state === 'inflight') this.inFlightCount--;
    else if (t.state === 'waiting') this.waitingCount--;
    else if (t.state === 'settling') this.settlingCount--;
    else {
      const list = this.visible[t.level];
      const i = list.indexOf(t.key);
      if (i >= 0) list.splice(i, 1);
    }
  }

  // ------------------------------------------------------------------ FIFO groups (level 0)

  /** True when a message of this group may be delivered now (nothing of it tracked or held ahead). */
  groupIsFree(groupId: string): boolean {
    const g = this.groups.get(groupId);
    return g === undefined || (g.tracked === null && g.held.length === 0);
  }

  /** Parks a message behind its group's in-flight one; it is delivered when the group frees up. */
  hold(groupId: string, offset: number): void {
    let g = this.groups.get(groupId);
    if (g === undefined) this.groups.set(groupId, (g = { tracked: null, held: [] }));
    assert(g.held.length === 0 || g.held[g.held.length - 1] < offset, 'held offsets ascend');
    g.held.push(offset);
    this.heldCount++;
    this.refreshGroup(groupId, g);
  }

  /** Removes and returns the head of a free group's held messages. */
  takeHeld(groupId: string): number | undefined {
    const g = this.groups.get(groupId);
    if (g === undefined || g.tracked !== null || g.held.length === 0) return undefined;
    const offset = g.held.shift()!;
    this.heldCount--;
    this.refreshGroup(groupId, g);
    return offset;
  }

  /**
   * Puts back the head takeHeld returned, still its group's head: its expiry's dead letter could not
   * be written, and a later take tries again (skipped, it was neither delivered nor settled).
   */
  returnHeld(groupId: string, offset: number): void {
    let g = this.groups.get(groupId);
    if (g === undefined) this.groups.set(groupId, (g = { tracked: null, held: [] }));
    assert(g.tracked === null && (g.held.length === 0 || g.held[0] > offset), 'a held head goes back first');
    g.held.unshift(offset);
    this.heldCount++;
    this.refreshGroup(groupId, g);
  }

  /**
   * The lowest offset held behind any group (level 0), leaving out `except` (overflow's chosen
   * victims), or undefined when none is.
   */
  oldestHeld(except: ReadonlySet<number>): number | undefined {
    let oldest: number | undefined;
    for (const g of this.groups.values()) {
      // held is in offset order: a group's first offset not left out is its oldest.
      const first = g.held.find((o) => !except.has(o));
      if (first !== undefined && (oldest === undefined || first < oldest)) oldest = first;
    }
    return oldest;
  }

  /** Takes a held message out of its group (overflow dropped it); the group's next one moves up. */
  unhold(offset: number): void {
    for (const [id, g] of this.groups) {
      const i = g.held.indexOf(offset);
      if (i < 0) continue;
      g.held.splice(i, 1);
      this.heldCount--;
      this.refreshGroup(id, g);
      return;
    }
  }

  private attachGroup(t: Tracked): void {
    const id = t.groupId!;
    let g = this.groups.get(id);
    if (g === undefined) this.groups.set(id, (g = { tracked: null, held: [] }));
    g.tracked = t.key;
    this.refreshGroup(id, g);
  }

  private refreshGroup(id: string, g: Group): void {
    if (g.tracked === null && g.held.length > 0) this.freeGroups.add(id);
    else this.freeGroups.delete(id);
    if (g.tracked === null && g.held.length === 0) this.groups.delete(id);
  }

  private dropHeldBelow(end: number): void {
    for (const [id, g] of this.groups) {
      const before = g.held.length;
      g.held = g.held.filter((o) => o >= end);
      this.heldCount -= before - g.held.length;
      this.refreshGroup(id, g);
    }
  }

  // ------------------------------------------------------------------ journal replay and snapshots

  /** Applies one replayed op (ops hold absolute values, so applying one twice is harmless). */
  apply(op: JournalOp): void {
    if (op.k === 'settle' || op.k === 'settleRange') {
      const end = op.k === 'settle' ? op.offset + 1 : op.t1;
      this.level(op.level).settled.addRange(op.offset, end);
      if (op.level === DELAY_LEVEL) return;
      if (op.k === 'settle') this.tracked.delete(trackedKey(op.level, op.offset));
      else
        for (const t of [...this.tracked.values()])
          if (t.level === op.level && t.offset >= op.offset && t.offset < end) this.tracked.delete(t.key);
      return;
    }
    const key = trackedKey(op.level, op.offset);
    if (this.level(op.level).settled.has(op.offset)) return;
    let t = this.tracked.get(key);
    if (t === undefined) {
      t = {
        key,
        level: op.level,
        offset: op.offset,
        deliveryCount: 0,
        firstDeliveredAt: 0,
        lastDeliveredAt: 0,
        state: 'waiting',
        dueMs: 0,
        token: 0,
        groupId: undefined,
        bytes: 0,
        lastError: undefined,
        leaseBatch: 0,
      };
      this.tracked.set(key, t);
    }
    t.deliveryCount = op.count;
    if (op.k === 'deliver') {
      t.firstDeliveredAt = op.t1;
      t.lastDeliveredAt = op.t2;
      t.state = 'inflight'; // until a later op says otherwise: a lease open when the broker stopped
      t.dueMs = 0;
    } else {
      t.state = 'waiting';
      t.dueMs = op.t1;
      if (op.t2 > 0) t.firstDeliveredAt = op.t2;
    }
  }

  /**
   * After replay: the counts of the recovered tracked messages, each in flight (its lease was open
   * when the broker stopped; recovery ends it) or waiting (until its due time).
   */
  finishRecovery(): void {
    this.inFlightCount = 0;
    this.waitingCount = 0;
    for (const t of this.tracked.values()) {
      assert(t.state === 'inflight' || t.state === 'waiting', `recovered ${t.level}/${t.offset} in state ${t.state}`);
      if (t.state === 'inflight') this.inFlightCount++;
      else this.waitingCount++;
    }
  }

  /** A recovered message whose record is gone (truncated away, or never durably appended): no op. */
  forgetRecovered(t: Tracked): void {
    this.forget(t);
  }

  snapshot(): StateSnapshot {
    return {
      levels: this.levels.map((l) => l.settled.ranges()),
      delay: this.delay.settled.ranges(),
      tracked: [...this.tracked.values()].map((t) => [
        t.level,
        t.offset,
        t.deliveryCount,
        t.firstDeliveredAt,
        t.lastDeliveredAt,
        t.state === 'waiting' ? t.dueMs : 0,
        // settling: a dead letter not yet written ended its lease; a restart judges it as one still open.
        t.state === 'inflight' || t.state === 'settling' ? 1 : 0,
      ]),
    };
  }

  restore(s: StateSnapshot): void {
    s.levels.forEach((ranges, i) => {
      if (i < this.levels.length) for (const [a, b] of ranges) this.levels[i].settled.addRange(a, b);
    });
    for (const [a, b] of s.delay) this.delay.settled.addRange(a, b);
    for (const [level, offset, count, first, last, dueMs, leased] of s.tracked) {
      if (level >= this.levels.length) continue;
      this.tracked.set(trackedKey(level, offset), {
        key: trackedKey(level, offset),
        level,
        offset,
        deliveryCount: count,
        firstDeliveredAt: first,
        lastDeliveredAt: last,
        state: leased === 1 ? 'inflight' : 'waiting',
        dueMs,
        token: 0,
        groupId: undefined,
        bytes: 0,
        lastError: undefined,
        leaseBatch: 0,
      });
    }
  }

  /** After a recovered message's record was read: its FIFO group becomes known. */
  setGroup(t: Tracked, groupId: string | undefined): void {
    if (groupId === undefined || t.groupId !== undefined) return;
    t.groupId = groupId;
    this.attachGroup(t);
  }

  /** The pending ops as one journal entry, or null when there are none. */
  takeOps(): Uint8Array | null {
    return this.pendingOps.take();
  }
}

/** Level number of the delay log in journal ops. */
export const DELAY_LEVEL = 255;
