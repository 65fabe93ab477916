// Where a remote reader without a group resumes after a reconnect: in each partition, at the offset
// after the last message handed to its handler, as a Kafka consumer keeps its fetch position; a
// partition that has handed nothing yet starts where the first subscribe (or the last seek) started
// it. The resubscribe says so with SubscribeOptions.startOffsets (protocol version 9).
import { validateStartPosition } from '../broker/index.js';
import { isWharfError } from '../common/index.js';
import { OP, START_OFFSETS_VERSION, type StartPosition, type Stats } from '../protocol/index.js';
import type { ClientConnection } from './connection.js';
import { readByName } from './name-requests.js';

function isOffsetMap(v: unknown): v is Record<string, number> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export class ReaderResume {
  /** Per partition (the index), the offset after the last message handed; a hole = none since the start or the last seek. */
  private readonly next: number[] = [];
  /**
   * Per partition, offsets below `next` its handler released and that were not handed again yet
   * (at most its in-flight window): a reconnect resumes at the lowest.
   */
  private readonly owed: Array<Set<number> | undefined> = [];
  /** Start offsets of partitions that have handed nothing yet: the caller's startOffsets, or 'latest' pinned. */
  private starts: Record<string, number> = {};
  /** Where a partition named by neither starts: the caller's `from`, or the last seek's position. */
  private from: unknown;
  /** 'latest' was pinned for the first SUBSCRIBE (beforeStart). */
  private pinned = false;
  private subscribedOnce = false;

  constructor(private readonly base: Record<string, unknown>) {
    this.from = base.from;
    if (isOffsetMap(base.startOffsets)) this.starts = { ...base.startOffsets };
  }

  /** Before the first SUBSCRIBE: pins 'latest' (pinLatest), unless the caller's options are not what the server takes. */
  async beforeStart(conn: ClientConnection, topic: string): Promise<void> {
    if (this.subscribedOnce || (this.from ?? 'latest') !== 'latest') return;
    const given = this.base.startOffsets;
    if (given !== undefined && !isOffsetMap(given)) return; // sent as given, for the server to refuse
    const ends = await pinLatest(conn, topic);
    this.pinned = Object.keys(ends).length > 0;
    this.starts = { ...ends, ...this.starts };
  }

  subscribed(): void {
    this.subscribedOnce = true;
  }

  /** A message is handed to the handler. */
  handed(partition: number, offset: number, deliveryCount: number): void {
    // A released message handed again (its deliveryCount unchanged, so it looks like a first
    // delivery) may follow later offsets already handed (maxInFlight > 1): it is no longer owed,
    // and it moves nothing back past them, or a reconnect would hand those to the handler again.
    const owed = this.owed[partition];
    if (owed !== undefined && owed.delete(offset)) {
      if (owed.size === 0) this.owed[partition] = undefined;
      return;
    }
    const n = this.next[partition];
    // A retry (deliveryCount > 1) may follow later offsets already handed (maxInFlight > 1): it never
    // moves the position back. First deliveries come in offset order, moved back only by a seek.
    if (deliveryCount === 1 || n === undefined || offset + 1 > n) this.next[partition] = offset + 1;
  }

  /**
   * The handler turned a message it was handed away (threw RELEASED): it did not get it, so a
   * reconnect resumes at it (the server delivers it again on this flow meanwhile, if it can) until
   * it is handed again.
   */
  released(partition: number, offset: number): void {
    const n = this.next[partition];
    if (n === undefined || offset >= n) return;
    (this.owed[partition] ??= new Set()).add(offset);
  }

  /** Where a partition resumes: at its lowest released message not handed again, else after the last handed. */
  private resumeOffset(partition: number): number {
    let at = this.next[partition];
    for (const offset of this.owed[partition] ?? []) if (offset < at) at = offset;
    return at;
  }

  /**
   * Where partitions start after a SEEK to `position`: 'latest' pinned, else none. INVALID_ARGUMENT
   * for a position the server would refuse, so that no refused seek changes where the reader resumes.
   */
  async startsAfterSeek(
    conn: ClientConnection,
    topic: string,
    position: StartPosition,
  ): Promise<Record<string, number>> {
    const pos = validateStartPosition(position, 'seek position');
    return pos === 'latest' ? await pinLatest(conn, topic) : {};
  }

  /**
   * A SEEK to `position` is being sent (startsAfterSeek gave `starts`). From here on what is handed
   * is from the new position, but for deliveries of the old one still on their way: a reconnect
   * before the new position hands anything in their partition resumes after them. A seek whose
   * answer is lost with its connection counts as done: the caller retries it.
   */
  seeking(position: StartPosition, starts: Record<string, number>): void {
    this.next.length = 0;
    this.owed.length = 0;
    this.starts = starts;
    this.from = position;
  }

  /** The options of a SUBSCRIBE on a connection of protocol `version`. */
  options(version: number): Record<string, unknown> {
    const startOffsetsTaken = version >= START_OFFSETS_VERSION;
    if (!this.subscribedOnce) {
      // What the caller gave, for the server to judge, plus 'latest' pinned where the server takes it.
      return this.pinned && startOffsetsTaken ? { ...this.base, startOffsets: { ...this.starts } } : this.base;
    }
    if (!startOffsetsTaken) {
      // An older server refuses startOffsets: the reader restarts at `from`, as before version 9.
      const { startOffsets: _dropped, ...rest } = this.base;
      return { ...rest, from: this.from };
    }
    const startOffsets: Record<string, number> = { ...this.starts };
    this.next.forEach((_, partition) => (startOffsets[partition] = this.resumeOffset(partition)));
    return { ...this.base, from: this.from, startOffsets };
  }
}

/**
 * 'latest' as offsets: each partition's end offset now (STATS), so that a partition that hands
 * nothing before a reconnect resumes at the end as of the subscribe, not as of the reconnect. {}
 * against a server older than version 9 (it could not take them) or for a topic that is not found
 * (the SUBSCRIBE or SEEK that follows says so in its own words).
 */
async function pinLatest(conn: ClientConnection, topic: string): Promise<Record<string, number>> {
  if ((conn.hello?.version ?? START_OFFSETS_VERSION) < START_OFFSETS_VERSION) return {};
  let stats: Stats;
  try {
    stats = await readByName<Stats>(conn, OP.STATS, topic);
  } catch (err) {
    if (isWharfError(err, 'NOT_FOUND')) return {};
    throw err;
  }
  const ends: Record<string, number> = {};
  if (stats.kind === 'topic') for (const p of stats.partitions) ends[p.partition] = p.endOffset;
  return ends;
}
