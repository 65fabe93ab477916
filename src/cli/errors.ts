// How a failing command ends: `error CODE: message`, a line saying how to fix it, and exit 1; a usage
// error as commander reports its own, and exit 2.
import type { Command } from 'commander';
import { toWharfError, type ErrorCode } from '../common/index.js';
import type { CliContext } from './context.js';

/** What a client command's user can do about each failure; a server command's messages carry their own fix. */
const CLIENT_FIX: Partial<Record<ErrorCode, string>> = {
  UNAVAILABLE: 'is the server running? start it with `wharf serve`, or point --url / WHARF_URL at it',
  NOT_FOUND: 'list what exists with `wharf topics list` / `wharf queues list`, or create it first',
  ALREADY_EXISTS: 'pick another name, or `describe` the existing one',
  INVALID_ARGUMENT: 'check the arguments; every command has --help',
  MESSAGE_TOO_LARGE: 'send a smaller message, or raise maxMessageBytes on the server',
  QUEUE_FULL: 'consume from the queue, or raise its maxLength',
  RATE_LIMITED: 'slow down, or raise the queue rateLimit',
  TIMEOUT: 'the server did not answer in time; check its load and retry',
  CLOSED: 'the connection closed; retry',
  RECEIPT_INVALID: 'the lease expired; receive the message again',
  LIMIT_EXCEEDED: 'the server refused a limit; see docs/limits.md',
  UNAUTHORIZED: 'pass credentials in the --url',
};

/** Exit code for a failure: the command ran and something went wrong. */
export const EXIT_FAILURE = 1;
/** Exit code for a usage error: an unknown option, a bad option value, options that do not go together. */
export const EXIT_USAGE = 2;

export function reportError(ctx: CliContext, err: unknown, o: { clientFixes?: boolean } = {}): number {
  const e = toWharfError(err);
  ctx.stderr.write(`error ${e.code}: ${e.message}\n`);
  const fix = o.clientFixes === false ? undefined : CLIENT_FIX[e.code];
  if (fix) ctx.stderr.write(`  fix: ${fix}\n`);
  return EXIT_FAILURE;
}

/**
 * A usage error an action finds (options that only go together), reported as commander reports
 * its own: `error: …`, a pointer to --help, exit 2. Throws commander's error, which the runner
 * passes on (runCli turns it into the exit code).
 */
export function usageError(cmd: Command, message: string): never {
  return cmd.error(`error: ${message}`, { exitCode: EXIT_USAGE, code: 'wharf.usage' });
}
