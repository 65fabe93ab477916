// `wharf consume <name>` (topic via a consumer group or a private reader, queue via receive + ack) and
// `wharf tail <topic>` (new messages as they arrive). Messages print as NDJSON; --count N exits after N.
import { Command } from 'commander';
import type { QueueMessage, StartPosition, Subscription, TopicMessage } from '../../broker/index.js';
import { WharfError, assert, isWharfError } from '../../common/index.js';
import { withClient, writeLine, type CliClient, type CliContext } from '../context.js';
import { usageError } from '../errors.js';
import { messageLine } from '../format.js';
import { intOption, startPositionOption } from '../options.js';
import { handBack } from '../../server/index.js';
import type { Runner } from '../runner.js';

interface ConsumeOpts {
  url?: string;
  group?: string;
  from: StartPosition;
  count?: number;
  waitMs?: number;
  ack?: boolean;
}

export function consumeCommand(ctx: CliContext, run: Runner): Command {
  return new Command('consume')
    .description('print messages of a topic or queue as JSON lines (queue messages are acked once printed)')
    .argument('<name>', 'topic or queue')
    .option('--url <url>', 'server, default WHARF_URL or wharf://127.0.0.1:7411')
    .option('--group <group>', 'topics: consumer group (commits offsets); without one nothing is committed')
    .option(
      '--from <position>',
      'topics: earliest | latest | <offset> | ts:<ms> (default earliest)',
      startPositionOption,
      'earliest',
    )
    .option('--count <n>', 'exit after this many messages', intOption('--count', 1))
    .option('--wait-ms <ms>', 'queues: long-poll wait per receive', intOption('--wait-ms'), 20_000)
    .option('--no-ack', 'queues: leave messages leased (they return after the visibility timeout)')
    .action(
      run(async (name: string, o: ConsumeOpts, cmd: Command) => {
        await withClient(ctx, o, async (c) => {
          if (await isTopic(c, name))
            await consumeTopic(ctx, c, name, { group: o.group, from: o.from, count: o.count });
          else {
            // A queue has no groups or positions: a flag meant for a topic is a mistake, not a no-op.
            const topicOnly = ['group', 'from'].filter((k) => cmd.getOptionValueSource(k) === 'cli');
            if (topicOnly.length > 0)
              usageError(
                cmd,
                `${topicOnly.map((k) => `--${k}`).join(' and ')}: ${JSON.stringify(name)} is a queue, and only topics have groups and positions`,
              );
            await consumeQueue(ctx, c, name, o);
          }
        });
      }),
    );
}

export function tailCommand(ctx: CliContext, run: Runner): Command {
  return new Command('tail')
    .description('print new messages of a topic as they arrive (a private reader from latest; commits nothing)')
    .argument('<topic>')
    .option('--url <url>', 'server, default WHARF_URL or wharf://127.0.0.1:7411')
    .option('--count <n>', 'exit after this many messages', intOption('--count', 1))
    .action(
      run(async (topic: string, o: { url?: string; count?: number }) => {
        await withClient(ctx, o, (c) => consumeTopic(ctx, c, topic, { from: 'latest', count: o.count }));
      }),
    );
}

async function isTopic(c: CliClient, name: string): Promise<boolean> {
  try {
    await c.describeTopic(name);
    return true;
  } catch (err) {
    if (isWharfError(err, 'NOT_FOUND')) return false;
    throw err;
  }
}

/**
 * Runs until count messages were printed, or until SIGINT/SIGTERM; fails with NOT_FOUND if the topic is
 * deleted meanwhile, and with the write's error once stdout cannot be written (nothing after the last
 * line printed is committed).
 */
async function consumeTopic(
  ctx: CliContext,
  c: CliClient,
  topic: string,
  o: { group?: string; from: StartPosition; count?: number },
): Promise<void> {
  /** Lines being written or written: a delivery takes its place before its write is awaited. */
  let taken = 0;
  let printed = 0;
  let writeFailed: unknown;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const handler = async (m: TopicMessage): Promise<void> => {
    // The deliveries of one frame (a partition each) run at once, so the count is checked and taken
    // in one step, before the write. Past it, or once stdout failed, the message is released: this
    // reader is leaving, which is no handler failure (not counted in the topic's errorRate), and a
    // group does not commit it but delivers it again to whoever reads on. The write's error is
    // what the command fails with.
    if (writeFailed !== undefined) throw new WharfError('RELEASED', 'stdout could not be written');
    if (o.count !== undefined && taken >= o.count) throw new WharfError('RELEASED', 'count reached');
    taken++;
    try {
      await writeLine(ctx, messageLine(m as never));
    } catch (err) {
      taken--; // not printed
      writeFailed ??= err;
      finish();
      throw new WharfError('RELEASED', 'stdout could not be written', { cause: err });
    }
    printed++;
    assert(o.count === undefined || printed <= o.count, 'consume prints at most --count lines');
    if (o.count !== undefined && printed >= o.count) finish();
  };
  const sub: Subscription = await c.subscribe(
    topic,
    o.group !== undefined ? { group: o.group, from: o.from } : { from: o.from },
    handler,
  );
  const stop = (): void => finish();
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    const reason = await Promise.race([done.then(() => null), sub.ended]);
    if (reason !== null) throw reason;
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
    await sub.close();
  }
  if (writeFailed !== undefined) throw writeFailed;
}

/**
 * After Ctrl-C, how long a receive already sent may still answer before the client closes. An
 * answer on its way when the user stopped would otherwise be dropped with the connection and its
 * messages stay leased until their visibility timeout; one that comes in this time is handed back
 * uncounted. A receive the server is still holding is ended by the close itself: the server hands
 * back what it leases after (docs/protocol.md §9).
 */
const STOP_GRACE_MS = 300;

async function consumeQueue(ctx: CliContext, c: CliClient, queue: string, o: ConsumeOpts): Promise<void> {
  let stopped = false;
  let onStop!: () => void;
  // Ctrl-C ends a long poll within STOP_GRACE_MS; closing the client then releases anything it leased.
  const stopping = new Promise<null>((resolve) => (onStop = () => resolve(null)));
  const stop = (): void => {
    stopped = true;
    onStop();
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    let printed = 0;
    while (!stopped && (o.count === undefined || printed < o.count)) {
      const max = Math.min(10, o.count === undefined ? 10 : o.count - printed);
      const receiving = c.receive(queue, { max, waitMs: o.waitMs });
      const batch = await Promise.race([receiving, stopping]);
      if (batch === null) {
        await handBackLateAnswer(c, queue, receiving);
        break;
      }
      for (let i = 0; i < batch.length; i++) {
        const m = batch[i];
        try {
          await writeLine(ctx, messageLine(m as never));
        } catch (err) {
          // Not printed, so not acked: this message and the rest of the batch go back to the queue.
          await handBack(c, queue, batch.slice(i));
          throw err;
        }
        printed++;
        if (o.ack !== false) await m.ack();
      }
    }
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}

/** Hands back what a receive interrupted by Ctrl-C leased, if its answer comes within STOP_GRACE_MS. */
async function handBackLateAnswer(c: CliClient, queue: string, receiving: Promise<QueueMessage[]>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([
    receiving.catch(() => null),
    new Promise<null>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS, null))),
  ]);
  clearTimeout(timer);
  if (late !== null && late.length > 0) await handBack(c, queue, late);
}
