// `wharf dlq redrive <dead-letter-queue>`: moves dead letters back to where they came from (or --to a queue).
import { Command } from 'commander';
import { printJson, withClient, type CliContext } from '../context.js';
import { intOption } from '../options.js';
import type { Runner } from '../runner.js';

export function dlqCommand(ctx: CliContext, run: Runner): Command {
  const cmd = new Command('dlq').description('dead-letter queue tools');
  cmd
    .command('redrive <deadLetterQueue>')
    .description('move dead letters back to their source queue (or --to another queue)')
    .option('--url <url>', 'server, default WHARF_URL or wharf://127.0.0.1:7411')
    .option('--to <queue>', "target queue instead of each message's source")
    .option('--max <n>', 'move at most this many', intOption('--max', 1))
    .action(
      run(async (dlq: string, o: { url?: string; to?: string; max?: number }) => {
        await withClient(ctx, o, async (c) => {
          const options = {
            ...(o.to !== undefined ? { to: o.to } : {}),
            ...(o.max !== undefined ? { max: o.max } : {}),
          };
          printJson(ctx, { redriven: await c.redrive(dlq, options) });
        });
      }),
    );
  return cmd;
}
