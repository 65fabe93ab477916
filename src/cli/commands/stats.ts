// `wharf stats [name]`: one name's stats as JSON, or a table of every topic and queue; --watch redraws it
// live, or with --json prints one JSON line per refresh.
import { Command } from 'commander';
import type { Stats } from '../../broker/index.js';
import { WharfError, isWharfError } from '../../common/index.js';
import { printJson, withClient, writeOut, type CliClient, type CliContext } from '../context.js';
import { table } from '../format.js';
import { usageError } from '../errors.js';
import { intOption } from '../options.js';
import type { Runner } from '../runner.js';

const COLUMNS = [
  'name',
  'kind',
  'depth',
  'inFlight',
  'dlqDepth',
  'oldestAgeMs',
  'lag',
  'publish/s',
  'deliver/s',
  'ack/s',
];

interface StatsOpts {
  url?: string;
  watch?: boolean;
  interval?: number;
  json?: boolean;
}

/** How often `stats --watch` refreshes (redraws the table, or prints a JSON line) unless --interval says otherwise. */
const WATCH_INTERVAL_MS = 1000;

export function statsCommand(ctx: CliContext, run: Runner): Command {
  return new Command('stats')
    .description('show stats: one name as JSON, or a table of all topics and queues')
    .argument('[name]', 'topic or queue')
    .option('--url <url>', 'server, default WHARF_URL or wharf://127.0.0.1:7411')
    .option('--watch', 'redraw as a live table until Ctrl-C (with --json: a JSON line per refresh)')
    .option(
      '--interval <ms>',
      `with --watch: refresh every ms, redrawing the table or printing a JSON line (default ${WATCH_INTERVAL_MS})`,
      intOption('--interval', 50),
    )
    .option(
      '--json',
      'print JSON even for the table; with --watch, one JSON document per refresh, one a line (NDJSON), no screen clearing',
    )
    .action(
      run(async (name: string | undefined, o: StatsOpts, cmd: Command) => {
        if (o.interval !== undefined && !o.watch)
          usageError(cmd, '--interval sets how often --watch refreshes; add --watch');
        await withClient(ctx, o, async (c) => {
          if (!o.watch) {
            if (name !== undefined || o.json) printJson(ctx, await jsonOf(c, name));
            else ctx.stdout.write(table(await rowsOf(c, undefined), COLUMNS));
            return;
          }
          await watch(ctx, c, name, o.interval ?? WATCH_INTERVAL_MS, o.json === true);
        });
      }),
    );
}

async function watch(
  ctx: CliContext,
  c: CliClient,
  name: string | undefined,
  periodMs: number,
  json: boolean,
): Promise<void> {
  let stopped = false;
  let wake: () => void = () => undefined;
  const stop = (): void => {
    stopped = true;
    wake();
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    for (let round = 0; !stopped; round++) {
      const frame = await frameOf(c, name, json).catch((err: unknown) => {
        if (round > 0 && name !== undefined && isWharfError(err, 'NOT_FOUND'))
          throw new WharfError('NOT_FOUND', `${JSON.stringify(name)} was deleted while watching its stats`, {
            cause: err,
          });
        throw err;
      });
      // Awaited, so a watch whose reader went away (`| head`) ends instead of refreshing for no one.
      await writeOut(ctx, frame);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, periodMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}

/**
 * One refresh of --watch. With --json, a line holding what `stats --json` prints once, so a program
 * reads one document per line (NDJSON); otherwise the table, drawn over the last one (clear the
 * screen, home the cursor): a live table without a TUI library.
 */
async function frameOf(c: CliClient, name: string | undefined, json: boolean): Promise<string> {
  if (json) return `${JSON.stringify(await jsonOf(c, name))}\n`;
  return `\x1b[2J\x1b[H${new Date().toISOString()}  (Ctrl-C to stop)\n${table(await rowsOf(c, name), COLUMNS)}`;
}

/** What --json prints: one name's stats in full, or the table's rows. */
async function jsonOf(c: CliClient, name: string | undefined): Promise<unknown> {
  return name !== undefined ? c.stats(name) : rowsOf(c, undefined);
}

/** One name's row, or every topic's and queue's; a listed name deleted before its stats are read is left out. */
async function rowsOf(c: CliClient, name: string | undefined): Promise<Array<Record<string, unknown>>> {
  if (name !== undefined) return [row(await c.stats(name))];
  const names = [...(await c.listTopics()).map((t) => t.name), ...(await c.listQueues()).map((q) => q.name)];
  const rows: Array<Record<string, unknown>> = [];
  for (const n of names) {
    const stats = await c.stats(n).catch((err: unknown) => {
      if (isWharfError(err, 'NOT_FOUND')) return null;
      throw err;
    });
    if (stats !== null) rows.push(row(stats));
  }
  return rows;
}

const rate = (r: number): string => r.toFixed(1);

function row(s: Stats): Record<string, unknown> {
  if (s.kind === 'exchange')
    return { name: s.name, kind: 'exchange', depth: '', 'publish/s': '', routed: s.routed, unroutable: s.unroutable };
  if (s.kind === 'queue') {
    return {
      name: s.name,
      kind: 'queue',
      depth: s.depth,
      inFlight: s.inFlight,
      dlqDepth: s.dlqDepth,
      oldestAgeMs: s.oldestAgeMs,
      'publish/s': rate(s.publishRate),
      'deliver/s': rate(s.deliverRate),
      'ack/s': rate(s.ackRate),
    };
  }
  const lag = Object.values(s.groups).reduce((sum, g) => sum + g.lag, 0);
  return {
    name: s.name,
    kind: 'topic',
    depth: s.messages,
    lag,
    'publish/s': rate(s.publishRate),
    'deliver/s': rate(s.deliverRate),
  };
}
