// The storage contract: what the broker layer may ask of a log. Two implementations honour it,
// on disk (segment files) and in memory (tests, `inMemory: true`); the broker never touches files.

/** When an append counts as durable. */
export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface RecordHeader {
  key: string;
  value: Uint8Array;
}

/** One record as the broker hands it to the log. */
export interface RecordInput {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
  timestampMs: number;
}

/** One record as read back; `key`/`value` may be views into a shared read buffer. */
export interface LogRecord extends RecordInput {
  offset: number;
}

/** Kafka RecordBatch v2 producer fields, used by idempotent and transactional publishes. */
export interface BatchProducerInfo {
  producerId: number; // int64 on disk; -1 when none
  producerEpoch: number; // int16; -1 when none
  baseSequence: number; // int32; -1 when none
  isTransactional?: boolean;
  isControl?: boolean;
}

export interface AppendResult {
  /** Offset of the first record appended. */
  baseOffset: number;
  /** Offset of the last record appended. */
  lastOffset: number;
}

export interface ReadOptions {
  /** Upper bound on bytes read from storage; at least one batch is returned even when larger. */
  maxBytes: number;
  /** Upper bound on records returned (but see wholeBatches). */
  maxRecords?: number;
  /**
   * Also return the rest of the batch in which maxRecords is reached. A reader that keeps what it
   * does not use yet (a queue's cursor) then never reads and checks that batch again. Such a reader
   * reads again for more, so the read may also stop short of maxBytes at a batch boundary (where
   * knowing whether the next batch fits would cost another read).
   */
  wholeBatches?: boolean;
}

export interface LogOptions {
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  segmentBytes: number;
  segmentMs: number;
  indexIntervalBytes: number;
  /** Retention by time; undefined keeps forever. */
  retentionMs?: number;
  /** Retention by total bytes; undefined keeps forever. */
  retentionBytes?: number;
}

/**
 * An append-only sequence of records with dense offsets starting at `startOffset`.
 * Single writer (the broker's event loop); appends are applied in call order.
 */
export interface PartitionLog {
  /** First offset still stored (moves up with retention / truncateBefore). */
  readonly startOffset: number;
  /** Offset the next appended record will get (the log end offset). */
  readonly endOffset: number;
  /** Bytes held on disk (or in memory) by this log. */
  readonly sizeBytes: number;

  /**
   * Appends records as one batch. Offsets are assigned synchronously in call order; the promise
   * resolves once the batch is durable under the fsync policy ('always': after an fsync that
   * covers it; concurrent appends share one fsync).
   */
  append(records: RecordInput[], producer?: BatchProducerInfo): Promise<AppendResult>;

  /** Records with offset >= fromOffset, in order. Empty at the end. fromOffset < startOffset: OFFSET out of range -> reads from startOffset. */
  read(fromOffset: number, options: ReadOptions): Promise<LogRecord[]>;

  /** Raw stored batches (RecordBatch v2 bytes) covering fromOffset, for serving without re-encoding. */
  readBatches(fromOffset: number, options: ReadOptions): Promise<Uint8Array[]>;

  /** First offset whose record timestamp >= timestampMs; endOffset when none. */
  offsetForTimestamp(timestampMs: number): Promise<number>;

  /** Deletes whole segments past retention (time, bytes). Returns the number of segments deleted. */
  applyRetention(nowMs: number): Promise<number>;

  /** Deletes whole segments whose records are all below offset (queues: fully settled). */
  truncateBefore(offset: number): Promise<number>;

  /** Forces everything appended so far to disk. */
  flush(): Promise<void>;

  close(): Promise<void>;
}

/** A small durable journal of state changes (queue acks, group offsets): append, then replay on open. */
export interface Journal {
  /** Appends one entry; resolves when durable under the fsync policy (group-committed). */
  append(entry: Uint8Array): Promise<void>;
  /** Atomically replaces the journal by a snapshot: a reopen then recovers exactly `entries`. */
  rewrite(entries: Uint8Array[]): Promise<void>;
  /**
   * Entries in append order, as recovered on open (a torn tail entry is dropped), until the first
   * append or rewrite; none after. A journal keeps no copy of what it writes (at a few entries a
   * message, holding them until the next rewrite was most of a quiet queue's memory), nor of what
   * it read once it writes: its owner replays entries() on open, before writing, and keeps its own
   * state from then on.
   */
  entries(): Iterable<Uint8Array>;
  readonly sizeBytes: number;
  close(): Promise<void>;
}

export interface JournalOptions {
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
}

/**
 * Where logs, journals and metadata live. Paths are arrays of validated name segments relative to
 * the storage root (e.g. ['topics', 'orders', '0']), so no caller builds file paths.
 * Disk: one root directory, locked against a second process. Memory: nothing touches the disk.
 */
export interface Storage {
  readonly kind: 'disk' | 'memory';
  openLog(path: string[], options: LogOptions): Promise<PartitionLog>;
  openJournal(path: string[], options: JournalOptions): Promise<Journal>;
  /** Removes everything under path (a deleted topic or queue). Logs/journals under it must be closed first. */
  remove(path: string[]): Promise<void>;
  /** Lists child names under path (e.g. partitions of a topic); [] when absent. */
  list(path: string[]): Promise<string[]>;
  /** Small metadata files, written atomically (temp, fsync, rename, fsync dir). null when absent. */
  readMeta(path: string[]): Promise<Uint8Array | null>;
  writeMeta(path: string[], bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}
