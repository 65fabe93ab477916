// `wharf serve`: runs the broker with its native and HTTP listeners until SIGTERM/SIGINT, then shuts
// down gracefully (stop accepting, finish in-flight work, fsync, close). A second signal exits at once.
import { Command, Option } from 'commander';
import { SETTINGS, type Setting } from '../../server/config-table.js';
import type { CliContext } from '../context.js';
import type { Runner } from '../runner.js';

export function serveCommand(ctx: CliContext, run: Runner): Command {
  const cmd = new Command('serve')
    .description('run the broker: native protocol on 127.0.0.1:7411, HTTP on 127.0.0.1:7412, data in ./data')
    .option('--config <file>', 'JSON config file (default: WHARF_CONFIG)')
    .addHelpText(
      'after',
      '\nPrecedence: flags > environment (WHARF_*) > config file > defaults. See docs/operations.md.',
    );
  for (const s of SETTINGS as readonly Setting[]) {
    cmd.addOption(new Option(s.flag, s.description).env(s.env));
  }
  cmd.action(
    run(
      async (o: Record<string, unknown>) => {
        // Commander already applied env vars to options; resolveConfig re-reads env itself, so pass only
        // values that came from the command line to keep the precedence in one place.
        const flags: Record<string, unknown> = {};
        for (const s of SETTINGS as readonly Setting[]) {
          if (cmd.getOptionValueSource(s.key) === 'cli') flags[s.key] = o[s.key];
        }
        // Loaded here so client commands do not pay for fastify and prom-client at start-up.
        const { resolveConfig, startServer } = await import('../../server/index.js');
        const config = await resolveConfig({ flags, env: ctx.env, configPath: o.config as string | undefined });
        const server = await startServer(config);
        ctx.stdout.write(
          `wharf serving ${config.inMemory ? '(in memory)' : config.dataDir} — native ${server.nativeUrl}  http ${server.httpUrl}\n`,
        );
        await new Promise<void>((resolve) => {
          const onSignal = (signal: string): void => {
            ctx.stdout.write(`wharf: ${signal}, shutting down gracefully\n`);
            process.once('SIGINT', () => process.exit(130)).once('SIGTERM', () => process.exit(143));
            server.close().then(resolve, (err: unknown) => {
              ctx.stderr.write(`wharf: shutdown failed: ${String(err)}\n`);
              process.exitCode = 1;
              resolve();
            });
          };
          process.once('SIGTERM', () => onSignal('SIGTERM')).once('SIGINT', () => onSignal('SIGINT'));
        });
      },
      { clientFixes: false },
    ),
  );
  return cmd;
}
