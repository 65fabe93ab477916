// What every command gets: how to reach a server, where to write, and the options shared by client commands.
import type { Wharf } from '../broker/index.js';
import type { Wharf_Exchanges } from '../broker/index.js';

/** A remote client (or, in tests, any Wharf). Exchanges are present when the server has them. */
export type CliClient = Wharf & Partial<Wharf_Exchanges>;

export interface CliContext {
  connect(url: string): Promise<CliClient>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
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
