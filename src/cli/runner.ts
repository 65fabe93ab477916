// The wrapper every command action runs in: turns a thrown WharfError into `error CODE`, a fix line and exit 1
// (a usage error the action found, usageError, passes through to runCli: exit 2).
export type Runner = <A extends unknown[]>(
  fn: (...args: A) => Promise<void>,
  options?: RunOptions,
) => (...args: A) => Promise<void>;

export interface RunOptions {
  /**
   * false for `wharf serve`: its failures (a port in use, a locked data dir) say how to fix them, and
   * the client-side fixes (`is the server running?`) would contradict them. Default true.
   */
  clientFixes?: boolean;
}
