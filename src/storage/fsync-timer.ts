// The 'interval' fsync policy: appends resolve after their write, and this timer makes them
// durable every fsyncIntervalMs. A crash loses at most the last interval (documented as opt-in).
export class IntervalSyncer {
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly sync: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Called after each write round. */
  markDirty(): void {
    this.dirty = true;
    if (this.timer !== null) return;
    this.timer = setTimeout(() => this.fire(), this.intervalMs);
    this.timer.unref(); // a pending sync never keeps the process alive; close() flushes
  }

  private fire(): void {
    this.timer = null;
    if (!this.dirty) return;
    this.dirty = false;
    this.inFlight = this.sync()
      .catch(this.onError)
      .finally(() => {
        this.inFlight = null;
      });
  }

  /** Stops the timer and waits for a sync in progress. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.dirty = false;
    if (this.inFlight) await this.inFlight;
  }
}

/** The syncer a log or journal needs under its fsync policy: one for 'interval', none otherwise. */
export function syncerFor(
  options: { fsync: string; fsyncIntervalMs: number },
  sync: () => Promise<void>,
  onError: (err: unknown) => void,
): IntervalSyncer | null {
  return options.fsync === 'interval' ? new IntervalSyncer(options.fsyncIntervalMs, sync, onError) : null;
}
