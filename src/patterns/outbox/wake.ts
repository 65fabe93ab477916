// A latch the relay sleeps on: notify() wakes a waiter now, or the next wait() if nobody waits yet.
export class Wake {
  private pending = false;
  private waiter: (() => void) | null = null;

  notify(): void {
    this.pending = true;
    this.waiter?.();
  }

  /** Call before reading, so a notification arriving during the read is not lost. */
  clear(): void {
    this.pending = false;
  }

  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.pending || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiter = null;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.waiter = done;
    });
  }
}
