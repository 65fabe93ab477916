// The fetch loop of one assigned partition: read a batch (bounded by fetchMaxBytes) up to the durable
// end, deliver its messages to the handler one at a time in offset order, commit, repeat; at the log
// end, wait for the next durable append. A handler that throws is retried with backoff (manual
// ack mode, deliveryCount+1) and counted in errorRate, and the progress before it is committed
// first, unless its transaction committed its offset (then it is consumed); one that throws
// RELEASED is neither counted nor committed (its reader is leaving); in 'auto' mode the
// batch is committed before delivery (at-most-once; with a DeliveryGate, only the part the gate
// admits) and a throw is counted, not retried. Commits and retries are partition-progress.ts's.
import { assert, isWharfError, toWharfError } from '../../common/index.js';
import type { TimerHandle, WharfError } from '../../common/index.js';
import type { LogRecord } from '../../storage/index.js';
import { BROKER_DEFAULTS, backoffMs } from '../context.js';
import { decodeInto } from '../message-codec.js';
import type { DeliveryGate, DeliveryGrant, Payload, StoredTopicDelivery, TopicMessage } from '../types.js';
import { PartitionProgress, type ProgressHost } from './partition-progress.js';
import type { DataWaiter, Topic, TopicPartition } from './topic.js';

/** What a fetcher needs of its subscription: what its progress needs (ProgressHost), and more. */
export interface FetcherHost extends ProgressHost {
  readonly topicRef: Topic;
  /** Hand each message over as a StoredTopicMessage, its record not decoded (Broker.subscribeStored). */
  readonly storedRecords: boolean;
  /** Auto-ack: what may be committed and delivered now (DeliveryGate); null: each batch whole. */
  readonly gate: DeliveryGate | null;
  /** Byte payloads may be views of the read buffer (disk storage: one fresh buffer per read). */
  readonly shareReadBuffers: boolean;
  /** Messages handed to the handler before the oldest of them settles (manual mode; 1 = one at a time). */
  readonly maxInFlight: number;
  /** The consumer group this member is in (its messages carry their grant), or null: a reader without one. */
  readonly group: string | null;
  readonly memberId: string;
}

type State = 'running' | 'stopping' | 'aborted';

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * A topic message whose record is not decoded (its message fields stay empty): what a fetcher of
 * a stored-records subscription hands over, for a server that writes the record to the wire.
 */
export class StoredTopicMessage implements TopicMessage, StoredTopicDelivery {
  id = '';
  type = '';
  key: string | null = null;
  headers: Record<string, string> = NO_HEADERS;
  payload: Payload = null;
  deliveryCount = 1;
  readonly timestamp: number;
  readonly offset: number;

  constructor(
    readonly record: LogRecord,
    readonly topic: string,
    readonly partition: number,
    readonly grant: DeliveryGrant | undefined,
  ) {
    this.timestamp = record.timestampMs;
    this.offset = record.offset;
  }
}

export class PartitionFetcher implements DataWaiter {
  /** Next offset to deliver. */
  position = -1;
  private state: State = 'running';
  private wakeUp: (() => void) | null = null;
  /** Commits of the settled progress and retries of failed messages (partition-progress.ts). */
  private readonly progress: PartitionProgress;
  /** The read of the batch after the one being delivered (errors kept as values, thrown when used). */
  private prefetched: { fromOffset: number; result: Promise<LogRecord[] | WharfError> } | null = null;
  /** Auto-ack with a gate: records read and not admitted yet, records[from..] (not committed past). */
  private unadmitted: { records: LogRecord[]; from: number } | null = null;
  private readonly done: Promise<void>;
  /** What every message of this fetcher carries as its grant (one shared object); undefined without a group. */
  private readonly grant: DeliveryGrant | undefined;

  constructor(
    private readonly host: FetcherHost,
    readonly partition: TopicPartition,
    /** The grant this fetcher runs for: its commits carry it, so once the grant is over they are refused. */
    readonly assignmentEpoch: number,
    startPosition: () => Promise<number>,
    committedAtStart: number | undefined,
  ) {
    this.grant =
      host.group === null ? undefined : Object.freeze({ group: host.group, memberId: host.memberId, assignmentEpoch });
    this.progress = new PartitionProgress(this, host, partition.index, assignmentEpoch, committedAtStart);
    this.done = this.run(startPosition);
  }

  /** Settles the message in flight, stops, and commits the position reached. */
  async stop(): Promise<void> {
    if (this.state === 'running') this.state = 'stopping';
    this.wake();
    await this.done;
    if (this.state === 'aborted') return;
    await this.progress.commitAtStop();
  }

  /**
   * The lowest offset not settled yet under this fetcher's grant: every message below it is settled;
   * the one at it is being handled, waits for a retry, or is the next to deliver (offsets are dense
   * from the position, so this is the position). null before the start position is known. A
   * transaction asks before it commits an offset under the grant (GroupMember.lowestUnsettledOffset).
   */
  lowestUnsettledOffset(): number | null {
    return this.position < 0 ? null : this.position;
  }

  /** Resolves once the fetch loop has ended and none of its handlers runs any more (stopped or aborted). */
  get finished(): Promise<void> {
    return this.done;
  }

  /** Stops at once without settling or committing (crash, expired session, deleted topic). */
  abort(): void {
    this.state = 'aborted';
    this.wake();
  }

  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
    if (this.state !== 'running') this.progress.wakeRetrySleepers();
  }

  // ProgressOwner (partition-progress.ts)
  get running(): boolean {
    return this.state === 'running';
  }

  get aborted(): boolean {
    return this.state === 'aborted';
  }

  private async run(startPosition: () => Promise<number>): Promise<void> {
    try {
      this.position = await startPosition();
    } catch (err) {
      this.host.onError(toWharfError(err));
      this.state = 'aborted';
      return;
    }
    // A group with no commit here started from its reset position (from): commit it, as Kafka's consumer
    // does, so lag counts from it and the next owner after a crash starts there, not at a new 'latest'.
    if (this.host.commit !== null && this.progress.lastCommitted === -1 && this.state !== 'aborted') {
      if ((await this.progress.commitNow(this.position)) === 'fenced') return;
    }
    const part = this.partition;
    let failures = 0;
    while (this.state === 'running') {
      if (this.position < part.log.startOffset) this.position = part.log.startOffset; // retention moved past us
      const end = part.durableEnd;
      if (this.position >= end) {
        await this.waitForData();
        continue;
      }
      let records: LogRecord[];
      let from = 0;
      const left = this.unadmitted;
      this.unadmitted = null;
      if (left !== null && left.records[left.from].offset === this.position) {
        records = left.records;
        from = left.from;
      } else {
        const got = await this.readFrom(end);
        if (got instanceof Error) {
          // Corrupt or unreadable data is reported and retried, never skipped or served.
          this.host.topicRef.errorMeter.mark();
          this.host.onError(got);
          await this.sleep(backoffMs(++failures));
          continue;
        }
        failures = 0;
        records = got;
        if (records.length === 0) {
          await this.sleep(backoffMs(++failures));
          continue;
        }
      }
      let to = records.length;
      if (this.host.autoAck) {
        const committed = await this.commitBeforeDelivery(records, from);
        if (committed === 'fenced' || this.aborted) break;
        if (committed === 'none-admitted' || committed === 'failed') {
          this.unadmitted = { records, from };
          if (committed === 'none-admitted') await this.waitForRoom(this.host.gate!);
          else await this.sleep(backoffMs(++failures)); // reported
          continue;
        }
        to = committed.to;
        if (to < records.length) this.unadmitted = { records, from: to };
      }
      const delivered =
        !this.host.autoAck && this.host.maxInFlight > 1
          ? await this.deliverWindowed(records, end)
          : await this.deliverBatch(records, end, from, to);
      if (delivered > 0) this.host.topicRef.deliverMeter.mark(delivered);
      // Only an aborted fetcher stops short of what its gate admitted: the rest is given back.
      if (this.host.gate !== null && delivered < to - from) this.host.gate.release(to - from - delivered);
      if (!this.host.autoAck) this.progress.commitSoon();
    }
  }

  /**
   * The next batch from the position (up to `end`), an error as a value, reading the one after it
   * meanwhile so disk and handler overlap. Retention may have moved the log start past the position
   * during the read: then its records start later, and the position (the lowest unsettled offset,
   * lowestUnsettledOffset) moves to them, so it never names a record gone.
   */
  private async readFrom(end: number): Promise<LogRecord[] | WharfError> {
    let records: LogRecord[];
    try {
      const pf = this.prefetched;
      this.prefetched = null;
      if (pf !== null && pf.fromOffset === this.position) {
        const got = await pf.result;
        if (got instanceof Error) throw got;
        records = got;
      } else {
        records = await this.read(this.position, BROKER_DEFAULTS.fetchMaxBytes, end);
      }
    } catch (err) {
      return toWharfError(err);
    }
    if (records.length === 0) return records;
    if (records[0].offset > this.position) this.position = records[0].offset;
    const next = records[records.length - 1].offset + 1;
    const nextEnd = this.partition.durableEnd;
    if (next < nextEnd && this.state === 'running') {
      this.prefetched = {
        fromOffset: next,
        result: this.read(next, BROKER_DEFAULTS.fetchMaxBytes, nextEnd).catch((err: unknown) => toWharfError(err)),
      };
    }
    return records;
  }

  /**
   * Auto-ack: commits durably past the records about to be delivered, records[from..] (all of them
   * without a gate; with one, as many as it admits), and returns the index past the last of them;
   * 'none-admitted' when the gate admits none now (nothing committed); 'fenced' (the fetcher is
   * aborted) or 'failed' (reported) when the commit was not written: their admission is given back.
   */
  private async commitBeforeDelivery(
    records: LogRecord[],
    from: number,
  ): Promise<{ to: number } | 'none-admitted' | 'fenced' | 'failed'> {
    const gate = this.host.gate;
    const count = records.length - from;
    const admitted = gate === null ? count : gate.admit(count);
    assert(admitted >= 0 && admitted <= count, 'a delivery gate admits from 0 to what it was offered');
    if (admitted === 0) return 'none-admitted';
    const to = from + admitted;
    if (this.host.commit === null) return { to };
    const outcome = await this.progress.commitNow(records[to - 1].offset + 1);
    if (outcome === 'ok') return { to };
    gate?.release(admitted);
    return outcome;
  }

  /**
   * One read up to the durable end. A read that hits a corrupt batch is retried one batch at a time,
   * so the intact batches before it are still delivered and the error names the corrupt one.
   */
  private async read(fromOffset: number, maxBytes: number, end: number): Promise<LogRecord[]> {
    const log = this.partition.log;
    try {
      return await log.read(fromOffset, { maxBytes, maxRecords: end - fromOffset });
    } catch (err) {
      if (!isWharfError(err, 'CORRUPT_DATA')) throw err;
      return await log.read(fromOffset, { maxBytes: 1, maxRecords: end - fromOffset });
    }
  }

  /** Hands records[from..to) to the handler one at a time, in offset order. */
  private async deliverBatch(records: LogRecord[], end: number, from: number, to: number): Promise<number> {
    const auto = this.host.autoAck;
    const handler = this.host.handler;
    // A batch of handlers that take long commits its progress now and then (progressCommitIntervalMs),
    // checked only after a handler that was awaited: synchronous handlers never read the clock.
    const commitsProgress = !auto && this.host.commit !== null;
    let progressCommitDueMs = commitsProgress ? this.progressCommitDueMs() : 0;
    let delivered = 0;
    for (let i = from; i < to; i++) {
      // A stopping auto-ack fetcher finishes its batch: it is already committed, so dropping it would lose it.
      if (this.state === 'aborted' || (this.state === 'stopping' && !auto)) break;
      const rec = records[i];
      if (rec.offset < this.position) continue;
      if (rec.offset >= end) break;
      const msg = this.decode(rec);
      let awaited = false;
      if (msg !== null) {
        // Hot path: a synchronous handler that returns costs no promise and no await.
        let settled = true;
        try {
          const r = handler(msg);
          if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
            awaited = true;
            await r;
          }
        } catch (err) {
          awaited = true;
          settled = await this.progress.retry(msg, err);
        }
        if (!settled) break;
      }
      this.position = rec.offset + 1;
      delivered++;
      // After the position moved past this message: its handler may have committed past it in a
      // transaction, and a commit of the position before it would move the group's offset back.
      if (awaited && commitsProgress) progressCommitDueMs = this.commitProgressWhenDue(progressCommitDueMs);
    }
    return delivered;
  }

  /** When a batch starting now commits its settled progress first, unless it ends before. */
  private progressCommitDueMs(): number {
    return this.host.clock.now() + BROKER_DEFAULTS.progressCommitIntervalMs;
  }

  /**
   * After an awaited handler settled: commits the position (the lowest unsettled offset) once the
   * batch's progress commit is due, so a batch of handlers that take long is not committed only at
   * its end. Returns when the next one is due.
   */
  private commitProgressWhenDue(dueMs: number): number {
    if (this.host.clock.now() < dueMs) return dueMs;
    this.progress.commitSoon();
    return this.progressCommitDueMs();
  }

  /**
   * maxInFlight > 1 (manual mode): hand up to maxInFlight messages to the handler in offset order
   * without waiting for each to settle; the position (what gets committed) advances only over the
   * contiguous settled prefix. A failed message is retried with backoff while later ones proceed;
   * the batch returns once every message handed out has settled (or given up when stopped), so a
   * rebalance still waits for in-flight settles before its commit. As in deliverBatch, the position
   * is also committed every progressCommitIntervalMs while handlers that take long settle: a slow
   * message holds back the commit of those after it (the position stops at it), not of those before.
   */
  private async deliverWindowed(records: LogRecord[], end: number): Promise<number> {
    const handler = this.host.handler;
    const max = this.host.maxInFlight;
    const startPosition = this.position;
    const commitsProgress = this.host.commit !== null;
    let progressCommitDueMs = commitsProgress ? this.progressCommitDueMs() : 0;
    const settled = new Uint8Array(records.length); // 1 = settled (or skipped)
    let last = records.length; // index past the last record handed out or skipped
    let cursor = 0; // first index not yet known settled
    let inFlight = 0;
    let delivered = 0;
    let gaveUp = false;
    let waiter: (() => void) | null = null;
    const advance = (): void => {
      while (cursor < last && settled[cursor] === 1) {
        this.position = records[cursor].offset + 1;
        cursor++;
      }
    };
    /** `awaited`: the handler returned a promise or threw (synchronous handlers never read the clock). */
    const finish = (i: number, ok: boolean, awaited: boolean): void => {
      inFlight--;
      if (ok) {
        settled[i] = 1;
        delivered++;
        advance();
        if (awaited && commitsProgress) progressCommitDueMs = this.commitProgressWhenDue(progressCommitDueMs);
      } else gaveUp = true;
      const w = waiter;
      waiter = null;
      w?.();
    };
    for (let i = 0; i < records.length; i++) {
      if (this.state !== 'running' || gaveUp) {
        last = i;
        break;
      }
      const rec = records[i];
      if (rec.offset >= end) {
        last = i;
        break;
      }
      if (rec.offset < startPosition) {
        settled[i] = 1;
        advance();
        continue;
      }
      while (inFlight >= max && this.state === 'running') await new Promise<void>((r) => (waiter = r));
      if (this.state !== 'running') {
        last = i;
        break;
      }
      const msg = this.decode(rec);
      if (msg === null) {
        settled[i] = 1;
        advance();
        continue;
      }
      inFlight++;
      let r: void | Promise<void>;
      try {
        r = handler(msg);
      } catch (err) {
        void this.progress.retryWindowed(msg, err).then((ok) => finish(i, ok, true));
        continue;
      }
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).then(
          () => finish(i, true, true),
          (err: unknown) => void this.progress.retryWindowed(msg, err).then((ok) => finish(i, ok, true)),
        );
      } else finish(i, true, false);
    }
    while (inFlight > 0) await new Promise<void>((r) => (waiter = r));
    return delivered;
  }

  /** The message for a record, or null (reported) for a record that passed its CRC but is not a Wharf message. */
  private decode(rec: LogRecord): TopicMessage | null {
    // Not decoded: the stored JSON was checked when it was published.
    if (this.host.storedRecords)
      return new StoredTopicMessage(rec, this.host.topicRef.name, this.partition.index, this.grant);
    const msg: TopicMessage = {
      id: '',
      type: '',
      timestamp: 0,
      key: null,
      headers: NO_HEADERS, // replaced by decodeInto; a shared placeholder saves an allocation per message
      payload: null,
      topic: this.host.topicRef.name,
      partition: this.partition.index,
      offset: rec.offset,
      deliveryCount: 1,
      grant: this.grant,
    };
    try {
      return decodeInto(rec, msg, this.host.shareReadBuffers);
    } catch (err) {
      this.host.topicRef.errorMeter.mark();
      this.host.onError(toWharfError(err));
      return null;
    }
  }

  /** Auto-ack with a gate that admits nothing now: waits until it may (or the fetcher stops). */
  private waitForRoom(gate: DeliveryGate): Promise<void> {
    return new Promise((resolve) => {
      if (this.state !== 'running') return resolve();
      gate.addWaiter(this);
      this.wakeUp = () => {
        gate.removeWaiter(this);
        resolve();
      };
    });
  }

  private waitForData(): Promise<void> {
    return new Promise((resolve) => {
      if (this.state !== 'running' || this.position < this.partition.durableEnd) return resolve();
      this.partition.addWaiter(this);
      this.wakeUp = () => {
        this.partition.removeWaiter(this);
        resolve();
      };
    });
  }

  /** The loop's backoff sleep; stop() and abort() end it early (also a retry's, partition-progress.ts). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: TimerHandle | null = null;
      this.wakeUp = () => {
        timer?.cancel();
        resolve();
      };
      timer = this.host.clock.setTimer(ms, () => this.wake());
    });
  }
}
