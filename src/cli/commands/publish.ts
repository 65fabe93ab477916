// `wharf publish <name> [json|@file|-]`: publishes one message (or NDJSON lines with --lines) to a topic,
// queue or exchange and prints where it was stored.
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import type { MessageInput, Payload } from '../../broker/index.js';
import { WharfError } from '../../common/index.js';
import { printJson, withClient, type CliContext } from '../context.js';
import { collectHeader, intOption } from '../options.js';
import type { Runner } from '../runner.js';

interface PublishOpts {
  url?: string;
  key?: string;
  type?: string;
  header?: Record<string, string>;
  priority?: number;
  delayMs?: number;
  groupId?: string;
  dedupId?: string;
  routingKey?: string;
  raw?: boolean;
  lines?: boolean;
}

export function publishCommand(ctx: CliContext, run: Runner): Command {
  return new Command('publish')
    .description('publish a message: JSON text, @file, or - for stdin')
    .argument('<name>', 'topic, queue or exchange')
    .argument('[payload]', 'JSON payload, @path to read a file, or - to read stdin', '-')
    .option('--url <url>', 'server, default WHARF_URL or wharf://127.0.0.1:7411')
    .option('--key <key>', 'message key (topics: picks the partition)')
    .option('--type <type>', 'message type (exchanges: default routing key)')
    .option('--header <k=v>', 'a header; repeat for more', collectHeader)
    .option('--priority <n>', 'priority (priority queues)', intOption('--priority'))
    .option('--delay-ms <ms>', 'not visible before this delay (queues)', intOption('--delay-ms'))
    .option('--group-id <id>', 'ordering group (FIFO queues)')
    .option('--dedup-id <id>', 'drops a repeat within the dedup window')
    .option('--routing-key <key>', 'routing key (exchanges)')
    .option('--raw', 'send the payload as bytes instead of parsing JSON')
    .option('--lines', 'one message per input line (NDJSON), published as one batch')
    .addHelpText(
      'after',
      `\nExamples:\n  wharf publish orders '{"amount": 99.99}' --key order-456\n  wharf publish emails @mail.json\n  cat events.ndjson | wharf publish audit - --lines`,
    )
    .action(
      run(async (name: string, source: string, o: PublishOpts) => {
        const text = await readSource(ctx, source);
        const bodies = o.lines ? parseLines(text, source, o.raw) : [parsePayload(text, source, o.raw)];
        const messages: MessageInput[] = bodies.map((payload) => ({
          payload,
          ...Object.fromEntries(
            Object.entries({
              key: o.key,
              type: o.type,
              headers: o.header,
              priority: o.priority,
              delayMs: o.delayMs,
              groupId: o.groupId,
              dedupId: o.dedupId,
              routingKey: o.routingKey,
            }).filter(([, v]) => v !== undefined),
          ),
        }));
        await withClient(ctx, o, async (c) => {
          if (messages.length === 1) printJson(ctx, await c.publish(name, messages[0]));
          else for (const r of await c.publish(name, messages)) printJson(ctx, r);
        });
      }),
    );
}

async function readSource(ctx: CliContext, source: string): Promise<Buffer> {
  if (source === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.stdin ?? process.stdin) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
  }
  if (source.startsWith('@')) {
    try {
      return await readFile(source.slice(1));
    } catch (err) {
      throw new WharfError('INVALID_ARGUMENT', `cannot read ${source.slice(1)}: ${(err as Error).message}`);
    }
  }
  return Buffer.from(source);
}

/** Where the payload came from, as a message names it. */
function sourceName(source: string): string {
  if (source === '-') return 'stdin';
  return source.startsWith('@') ? source.slice(1) : 'the payload argument';
}

/** --lines: one message per non-blank line; a bad line is named by its number (from 1, blank lines counted). */
function parseLines(text: Buffer, source: string, raw: boolean | undefined): Payload[] {
  const bodies: Payload[] = [];
  text
    .toString('utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        bodies.push(parsePayload(Buffer.from(line), source, raw));
      } catch (err) {
        throw new WharfError('INVALID_ARGUMENT', `line ${i + 1} of ${sourceName(source)}: ${(err as Error).message}`);
      }
    });
  if (bodies.length === 0) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `no messages on ${sourceName(source)}: --lines publishes one message per non-blank line (NDJSON)`,
    );
  }
  return bodies;
}

function parsePayload(bytes: Buffer, source: string, raw: boolean | undefined): Payload {
  if (raw) return new Uint8Array(bytes);
  const text = bytes.toString('utf8');
  if (text.trim() === '') {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `${sourceName(source)} was empty; pass a JSON payload ('{"amount": 99.99}'), or --raw to send empty bytes`,
    );
  }
  try {
    return JSON.parse(text) as Payload;
  } catch {
    throw new WharfError(
      'INVALID_ARGUMENT',
      'the payload is not valid JSON; quote strings (\'"hello"\') or pass --raw to send bytes',
    );
  }
}
