// The wrapper every command action runs in: turns a thrown WharfError into `error CODE`, a fix line and exit 1.
export type Runner = <A extends unknown[]>(fn: (...args: A) => Promise<void>) => (...args: A) => Promise<void>;
