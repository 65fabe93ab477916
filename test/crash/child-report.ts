// How a crash-test child tells its parent what happened, line by line. Not through stdout: Node
// writes to a pipe asynchronously on POSIX, so lines still buffered in the child die with it at
// SIGKILL (seen as "resolved publishes missing" that were in fact delivered and acked). A
// synchronous write to a file is in the page cache, which survives SIGKILL, before the child takes
// its next step. The parent (killed-child.ts) names the file in WHARF_CRASH_REPORT and reads it
// once the child is dead.
import { openSync, writeSync } from 'node:fs';

const path = process.env.WHARF_CRASH_REPORT;
if (path === undefined)
  throw new Error('WHARF_CRASH_REPORT is not set: run this child through test/crash/killed-child.ts');
const fd = openSync(path, 'a');

/** Appends one line to the report; it is durable against SIGKILL when this returns. */
export function report(line: string): void {
  writeSync(fd, line + '\n');
}

/** Reports READY and tells the parent on stdout too, so it can start the kill timer. */
export function reportReady(): void {
  report('READY');
  process.stdout.write('READY\n');
}
