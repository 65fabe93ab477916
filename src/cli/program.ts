// The `wharf` command tree: one file per command group under commands/, assembled here.
import { Command, CommanderError } from 'commander';
import type { CliContext } from './context.js';
import { reportError } from './errors.js';
import { exchangesCommand, queuesCommand, topicsCommand } from './commands/admin.js';
import { publishCommand } from './commands/publish.js';
import { consumeCommand, tailCommand } from './commands/consume.js';
import { statsCommand } from './commands/stats.js';
import { dlqCommand } from './commands/dlq.js';
import { benchCommand } from './commands/bench.js';
import { serveCommand } from './commands/serve.js';

/** Wraps an action: a failure prints `error CODE: message` plus a fix and sets a non-zero exit code. */
import type { Runner } from './runner.js';

/** Collects the exit code of the action that ran (0 unless it failed). */
export interface RunState {
  exitCode: number;
}

export function buildProgram(ctx: CliContext, state: RunState = { exitCode: 0 }): Command {
  const run: Runner =
    (fn) =>
    async (...args) => {
      try {
        await fn(...args);
      } catch (err) {
        state.exitCode = reportError(ctx, err);
      }
    };
  const program = new Command('wharf')
    .description(
      'Wharf, a durable message broker: run the server, manage topics, queues and exchanges, publish and consume',
    )
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
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
  const program = buildProgram(ctx, state);
  program.exitOverride();
  for (const c of allCommands(program)) c.exitOverride().configureOutput(program.configureOutput());
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return reportError(ctx, err);
  }
  return state.exitCode;
}

function allCommands(c: Command): Command[] {
  return c.commands.flatMap((sub) => [sub, ...allCommands(sub)]);
}
