// The `wharf` command tree: one file per command group under commands/, assembled here.
import { Command, CommanderError } from 'commander';
import { isReaderGone, type CliContext } from './context.js';
import { EXIT_USAGE, reportError } from './errors.js';
import { exchangesCommand, queuesCommand, topicsCommand } from './commands/admin.js';
import { publishCommand } from './commands/publish.js';
import { consumeCommand, tailCommand } from './commands/consume.js';
import { statsCommand } from './commands/stats.js';
import { dlqCommand } from './commands/dlq.js';
import { benchCommand } from './commands/bench.js';
import { serveCommand } from './commands/serve.js';

import type { Runner } from './runner.js';

/** What follows a usage error, on every command. */
const HELP_AFTER_ERROR = '(add --help for usage)';

/** Collects the exit code of the action that ran (0 unless it failed). */
export interface RunState {
  exitCode: number;
}

export function buildProgram(ctx: CliContext, state: RunState = { exitCode: 0 }): Command {
  // Wraps an action: a failure prints `error CODE: message` plus a fix and sets a non-zero exit code.
  const run: Runner =
    (fn, options = {}) =>
    async (...args) => {
      try {
        await fn(...args);
      } catch (err) {
        // A usage error the action found (usageError): commander printed it; runCli exits 2.
        if (err instanceof CommanderError) throw err;
        // Its reader went away (`| head` has what it wanted): the command ends there, as Unix tools do.
        if (isReaderGone(err)) return;
        state.exitCode = reportError(ctx, err, options);
      }
    };
  const program = new Command('wharf')
    .description(
      'Wharf, a durable message broker: run the server, manage topics, queues and exchanges, publish and consume',
    )
    .version('0.1.0')
    .showHelpAfterError(HELP_AFTER_ERROR)
    // Also accepted before the command (`wharf --url ... queues list`), as after it.
    .option('--url <url>', 'server for client commands, default WHARF_URL or wharf://127.0.0.1:7411')
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    });
  program.hook('preAction', (root, action) => {
    const url: unknown = root.opts().url;
    if (url === undefined) return;
    if (!action.options.some((o) => o.long === '--url')) {
      action.error(`error: --url is for client commands; \`wharf ${action.name()}\` does not take it`, {
        exitCode: EXIT_USAGE,
        code: 'wharf.urlNotUsed',
      });
    }
    // The command's own --url, given after it, wins.
    if (action.getOptionValue('url') === undefined) action.setOptionValue('url', url);
  });
  program.addCommand(serveCommand(ctx, run));
  program.addCommand(topicsCommand(ctx, run));
  program.addCommand(queuesCommand(ctx, run));
  program.addCommand(exchangesCommand(ctx, run));
  program.addCommand(publishCommand(ctx, run));
  program.addCommand(consumeCommand(ctx, run));
  program.addCommand(tailCommand(ctx, run));
  program.addCommand(statsCommand(ctx, run));
  program.addCommand(dlqCommand(ctx, run));
  program.addCommand(benchCommand(ctx, run));
  return program;
}

/** Parses argv and runs; resolves with the exit code. */
export async function runCli(ctx: CliContext, argv: string[]): Promise<number> {
  const state: RunState = { exitCode: 0 };
  // A write to a stdout whose reader went away fails with EPIPE, reported as an 'error' event that
  // would otherwise end the process with a stack trace. What is printed and then settled waits for
  // its write (writeOut) and stops there; anything else printed is lost with the reader, quietly.
  ctx.stdout.on('error', () => undefined);
  const program = buildProgram(ctx, state);
  program.exitOverride();
  for (const c of allCommands(program))
    c.exitOverride().configureOutput(program.configureOutput()).showHelpAfterError(HELP_AFTER_ERROR);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    return reportError(ctx, err);
  }
  return state.exitCode;
}

function allCommands(c: Command): Command[] {
  return c.commands.flatMap((sub) => [sub, ...allCommands(sub)]);
}
