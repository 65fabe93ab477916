// What every command gets: how to reach a server, where to write, and the options shared by client commands.
import type { Wharf } from '../broker/index.js';
import type { Wharf_Exchanges } from '../broker/index.js';
import { WharfError, isWharfError } from '../common/index.js';

/** A remote client (or, in tests, any Wharf). Exchanges are present when the server has them. */
export type CliClient = Wharf & Partial<Wharf_Exchanges>;

export interface CliContext {
  connect(url: string): Promise<CliClient>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
  /** What `publish <name> -` reads; default process.stdin. */
  stdin?: AsyncIterable<Buffer | string> | Iterable<Buffer | string>;
}

export const DEFAULT_URL = 'wharf://127.0.0.1:7411';

export function urlOf(ctx: CliContext, opts: { url?: string }): string {
  return opts.url ?? ctx.env.WHARF_URL ?? DEFAULT_URL;
}

/** Connects, runs fn, and always closes the client. */
export async function withClient<T>(
  ctx: CliContext,
  opts: { url?: string },
  fn: (c: CliClient) => Promise<T>,
): Promise<T> {
  const client = await ctx.connect(urlOf(ctx, opts));
  try {
    return await fn(client);
  } finally {
    await client.close().catch(() => undefined);
  }
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value)}\n`);
}

/**
 * Writes text to stdout and resolves once it is written. A command that settles a message after
 * printing it (a queue ack, a group commit) awaits this first: a line that never reached its reader
 * must not be settled. Rejects with an error that isOutputError recognises.
 */
export function writeOut(ctx: CliContext, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    ctx.stdout.write(text, (err) => {
      if (err === null || err === undefined) resolve();
      else reject(outputError(ctx, err));
    });
  });
}

export function writeLine(ctx: CliContext, line: string): Promise<void> {
  return writeOut(ctx, `${line}\n`);
}

function outputError(ctx: CliContext, err: Error): WharfError {
  // A write to a stdout an earlier failure destroyed reports only that it was destroyed: name the failure.
  const cause = (ctx.stdout as { errored?: Error | null }).errored ?? err;
  return new WharfError('INTERNAL', `cannot write to stdout: ${cause.message}`, {
    cause,
    details: { output: 'stdout', errno: (cause as NodeJS.ErrnoException).code ?? null },
  });
}

/** A failure to write stdout (from writeOut / writeLine). */
export function isOutputError(err: unknown): err is WharfError {
  return isWharfError(err, 'INTERNAL') && err.details?.output === 'stdout';
}

/** stdout's reader went away (`| head` exited): a normal end for a command that prints, not a failure. */
export function isReaderGone(err: unknown): boolean {
  const errno = isOutputError(err) ? err.details?.errno : (err as NodeJS.ErrnoException | null)?.code;
  return errno === 'EPIPE';
}
