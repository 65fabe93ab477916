// `wharf topics|queues|exchanges create|delete|list|describe`: managing names on a server.
import { Command } from 'commander';
import { WharfError } from '../../common/index.js';
import type { QueueOptions } from '../../broker/index.js';
import type { TopicOptions } from '../../broker/index.js';
import type { BindingTarget, ExchangeType } from '../../broker/index.js';
import { printJson, withClient, type CliClient, type CliContext } from '../context.js';
import { usageError } from '../errors.js';
import { table } from '../format.js';
import { collectHeader, intOption, jsonObjectOption } from '../options.js';
import type { Runner } from '../runner.js';

interface Common {
  url?: string;
  json?: boolean;
}

export function topicsCommand(ctx: CliContext, run: Runner): Command {
  const cmd = new Command('topics').description('create, delete, list and describe topics (partitioned logs)');
  cmd
    .command('create <name>')
    .description('create a topic')
    .option('--partitions <n>', 'number of partitions', intOption('--partitions', 1))
    .option('--retention-ms <ms>', 'keep messages this long', intOption('--retention-ms'))
    .option('--retention-bytes <n>', 'keep at most this many bytes per partition', intOption('--retention-bytes'))
    .option('--options <json>', 'any other TopicOptions as JSON', jsonObjectOption('--options'))
    .action(
      run(
        async (
          name: string,
          o: Common & { partitions?: number; retentionMs?: number; retentionBytes?: number; options?: object },
        ) => {
          const options: TopicOptions = {
            ...o.options,
            ...defined({ partitions: o.partitions, retentionMs: o.retentionMs, retentionBytes: o.retentionBytes }),
          };
          await withClient(ctx, o, async (c) => printJson(ctx, await c.createTopic(name, options)));
        },
      ),
    );
  addCommon(cmd, ctx, run, {
    remove: (c, n) => c.deleteTopic(n),
    list: (c) => c.listTopics(),
    describe: (c, n) => c.describeTopic(n),
    columns: ['name', 'partitions', 'retentionMs', 'createdAt'],
  });
  return cmd;
}

export function queuesCommand(ctx: CliContext, run: Runner): Command {
  const cmd = new Command('queues').description('create, delete, list and describe queues');
  cmd
    .command('create <name>')
    .description('create a queue')
    .option('--visibility-timeout-ms <ms>', 'lease length of a delivery', intOption('--visibility-timeout-ms'))
    .option('--max-deliveries <n>', 'deliveries before dead-lettering', intOption('--max-deliveries', 1))
    .option('--dead-letter-queue <name>', 'existing queue that takes failed messages')
    .option('--priorities <n>', 'priority levels (1-10)', intOption('--priorities', 1))
    .option('--fifo', 'strict order per groupId')
    .option('--max-length <n>', 'most messages waiting', intOption('--max-length', 1))
    .option('--overflow <policy>', 'reject | block | drop-oldest | drop-lowest-priority | dead-letter')
    .option('--options <json>', 'any other QueueOptions as JSON', jsonObjectOption('--options'))
    .action(
      run(async (name: string, o: Common & Record<string, unknown>) => {
        const options = {
          ...(o.options as object | undefined),
          ...defined({
            visibilityTimeoutMs: o.visibilityTimeoutMs,
            maxDeliveries: o.maxDeliveries,
            deadLetterQueue: o.deadLetterQueue,
            priorities: o.priorities,
            fifo: o.fifo,
            maxLength: o.maxLength,
            overflow: o.overflow,
          }),
        } as QueueOptions;
        await withClient(ctx, o, async (c) => printJson(ctx, await c.createQueue(name, options)));
      }),
    );
  cmd
    .command('purge <name>')
    .description('delete every waiting message of a queue')
    .action(
      run(async (name: string, o: Common) => {
        await withClient(ctx, o, async (c) => printJson(ctx, { purged: await c.purgeQueue(name) }));
      }),
    );
  addCommon(cmd, ctx, run, {
    remove: (c, n) => c.deleteQueue(n),
    list: (c) => c.listQueues(),
    describe: (c, n) => c.describeQueue(n),
    columns: ['name', 'fifo', 'priorities', 'visibilityTimeoutMs', 'deadLetterQueue'],
    flatten: (q) => ({ name: q.name, ...(q.options as object) }),
  });
  return cmd;
}

export function exchangesCommand(ctx: CliContext, run: Runner): Command {
  const cmd = new Command('exchanges').description('create, delete, list, describe and bind exchanges (routing)');
  cmd
    .command('create <name>')
    .description('create an exchange')
    .requiredOption('--type <type>', 'direct | fanout | topic | headers')
    .option('--alternate <name>', 'where unroutable messages go')
    .action(
      run(async (name: string, o: Common & { type: string; alternate?: string }) => {
        await withClient(ctx, o, async (c) => {
          const x = exchanges(c);
          printJson(
            ctx,
            await x.createExchange!(name, { type: o.type as ExchangeType, ...defined({ alternate: o.alternate }) }),
          );
        });
      }),
    );
  cmd
    .command('bind <exchange>')
    .description('route matching messages of an exchange to a queue, topic or exchange')
    .option('--queue <name>', 'target queue')
    .option('--topic <name>', 'target topic')
    .option('--exchange <name>', 'target exchange')
    .option('--pattern <pattern>', 'routing key (direct) or pattern with * and # (topic)')
    .option('--header <k=v>', 'headers exchange: a header to match; repeat for more', collectHeader)
    .option('--match <all|any>', 'headers exchange: every header or any one')
    .action(
      run(
        async (
          exchange: string,
          o: Common & {
            queue?: string;
            topic?: string;
            exchange?: string;
            pattern?: string;
            header?: Record<string, string>;
            match?: string;
          },
          cmd: Command,
        ) => {
          const targets = [
            o.queue !== undefined ? { queue: o.queue } : null,
            o.topic !== undefined ? { topic: o.topic } : null,
            o.exchange !== undefined ? { exchange: o.exchange } : null,
          ].filter((t) => t !== null);
          if (targets.length !== 1) usageError(cmd, 'give exactly one target: --queue, --topic or --exchange');
          const options = defined({
            pattern: o.pattern,
            headers: o.header,
            match: o.match as 'all' | 'any' | undefined,
          });
          await withClient(ctx, o, async (c) =>
            printJson(ctx, await exchanges(c).bind!(exchange, targets[0] as BindingTarget, options)),
          );
        },
      ),
    );
  addCommon(cmd, ctx, run, {
    remove: (c, n) => exchanges(c).deleteExchange!(n),
    list: (c) => exchanges(c).listExchanges!(),
    describe: (c, n) => exchanges(c).describeExchange!(n),
    columns: ['name', 'type', 'bindings', 'alternate'],
  });
  return cmd;
}

function exchanges(c: CliClient): CliClient {
  if (typeof c.createExchange !== 'function') {
    throw new WharfError('UNAVAILABLE', 'this server or client has no exchanges; upgrade Wharf');
  }
  return c;
}

interface CommonOps {
  remove(c: CliClient, name: string): Promise<void>;
  list(c: CliClient): Promise<object[]>;
  describe(c: CliClient, name: string): Promise<object>;
  columns: string[];
  flatten?: (row: Record<string, unknown>) => Record<string, unknown>;
}

function addCommon(cmd: Command, ctx: CliContext, run: Runner, ops: CommonOps): void {
  cmd
    .command('delete <name>')
    .description('delete it and its data')
    .action(
      run(async (name: string, o: Common) => {
        await withClient(ctx, o, async (c) => {
          await ops.remove(c, name);
          printJson(ctx, { deleted: name });
        });
      }),
    );
  cmd
    .command('list')
    .description('list them (a table; --json for JSON)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: Common) => {
        await withClient(ctx, o, async (c) => {
          const rows = (await ops.list(c)) as Array<Record<string, unknown>>;
          if (o.json) printJson(ctx, rows);
          else ctx.stdout.write(table(rows.map(ops.flatten ?? ((r) => r)), ops.columns));
        });
      }),
    );
  cmd
    .command('describe <name>')
    .description('print its settings as JSON')
    .action(
      run(async (name: string, o: Common) => {
        await withClient(ctx, o, async (c) => printJson(ctx, await ops.describe(c, name)));
      }),
    );
  for (const sub of cmd.commands) sub.option('--url <url>', 'server, default WHARF_URL or wharf://127.0.0.1:7411');
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
