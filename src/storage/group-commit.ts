// Group commit: a serial executor for write rounds. While one round (write + fsync) runs, new
// submissions queue; the next round takes every queued item at once, so N concurrent appends cost
// one writev and one fdatasync instead of N. Exclusive tasks (retention, rewrite, close) run
// between rounds, in submission order, never concurrently with a round.

export interface CommitItem {
  resolve(): void;
  reject(err: unknown): void;
}

export class GroupCommitter<T extends CommitItem> {
  /** Items for the round scheduled next; null when none is scheduled. */
  private nextBatch: T[] | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** Rounds run so far (tests and metrics). */
  roundCount = 0;

  /** round writes (and, per policy, syncs) the items; a throw rejects them all. */
  constructor(private readonly round: (items: T[]) => Promise<void>) {}

  submit(item: T): void {
    if (this.nextBatch === null) {
      const batch: T[] = [];
      this.nextBatch = batch;
      this.chain = this.chain.then(() => this.runRound(batch));
    }
    this.nextBatch.push(item);
  }

  private async runRound(items: T[]): Promise<void> {
    // From here on, new submissions schedule the next round behind this one.
    if (this.nextBatch === items) this.nextBatch = null;
    this.roundCount++;
    try {
      await this.round(items);
    } catch (err) {
      for (const item of items) item.reject(err);
      return;
    }
    for (const item of items) item.resolve();
  }

  /** Runs fn after every round submitted so far, with no round running meanwhile. */
  exclusive<R>(fn: () => Promise<R>): Promise<R> {
    this.nextBatch = null; // later submissions go to a round after fn, never before it
    const result = this.chain.then(fn);
    this.chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Resolves when every item submitted so far has been through a round. */
  drain(): Promise<void> {
    return this.exclusive(async () => undefined);
  }
}
