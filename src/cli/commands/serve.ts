// `wharf serve`: runs the broker with its native and HTTP listeners until SIGTERM/SIGINT, then shuts
// down gracefully (stop accepting, finish in-flight work, fsync, close). A second signal exits at once.
import { Command, InvalidArgumentError, Option } from 'commander';
import { SETTINGS, type Setting } from '../../server/config-table.js';
import { parseSetting, settingTakes } from '../../server/config.js';
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
    // The variable is named in the help only, not given to commander's .env(): resolveConfig reads the
    // environment itself (an empty value there means unset), and commander would refuse its values early.
    const option = new Option(s.flag, `${s.description} (env: ${s.env})`);
    // A bad flag value is a usage error (exit 2), as on every command, found before anything starts.
    if (option.required) option.argParser(flagParser(s));
    cmd.addOption(option);
  }
  cmd.action(
    run(
      async (o: Record<string, unknown>) => {
        // The flags given, already checked; resolveConfig keeps the precedence over the environment and
        // the config file in one place.
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

/** Checks a flag's value as resolveConfig checks every source's: `--port takes a whole number from 0 to 65535`. */
function flagParser(s: Setting): (value: string) => unknown {
  return (value) => {
    const parsed = parseSetting(s, value);
    if (parsed === undefined) throw new InvalidArgumentError(`${s.flag.split(' ')[0]} takes ${settingTakes(s)}`);
    return parsed;
  };
}
