// `wharf bench`: publishes N messages to a scratch topic or queue on a server and reads them back,
// with a progress bar on stderr; prints one JSON line with throughput and publish latency percentiles.
import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import * as hdr from 'hdr-histogram-js';
import type { MessageInput } from '../../broker/index.js';
import { printJson, withClient, type CliClient, type CliContext } from '../context.js';
import { intOption } from '../options.js';
import type { Runner } from '../runner.js';

const BENCH_KINDS = ['topic', 'queue'] as const;

interface BenchOpts {
  url?: string;
  kind: (typeof BENCH_KINDS)[number];
  messages: number;
  size: number;
  batch: number;
  keep?: boolean;
}

export function benchCommand(ctx: CliContext, run: Runner): Command {
  return new Command('bench')
    .description('measure publish and consume throughput against a server (uses a scratch topic or queue)')
    .option('--url <url>', 'server, default WHARF_URL or wharf://127.0.0.1:7411')
    .addOption(new Option('--kind <kind>', 'what to measure').choices(BENCH_KINDS).default('topic'))
    .option('--messages <n>', 'messages to publish', intOption('--messages', 1), 10_000)
    .option('--size <bytes>', 'payload size', intOption('--size', 1), 256)
    .option('--batch <n>', 'messages per publish call', intOption('--batch', 1), 100)
    .option('--keep', 'keep the scratch topic/queue afterwards')
    .action(
      run(async (o: BenchOpts) => {
        await withClient(ctx, o, async (c) => printJson(ctx, await bench(ctx, c, o)));
      }),
    );
}

async function bench(ctx: CliContext, c: CliClient, o: BenchOpts): Promise<Record<string, unknown>> {
  const name = `bench-${Date.now()}`;
  if (o.kind === 'queue') await c.createQueue(name);
  else await c.createTopic(name, { partitions: 1 });
  const bar = new cliProgress.SingleBar(
    {
      stream: ctx.stderr as NodeJS.WriteStream,
      format: '{phase} [{bar}] {value}/{total} {rate} msg/s',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 1000,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = new Uint8Array(randomBytes(o.size));
  const latencyUs = hdr.build();
  try {
    bar.start(o.messages, 0, { phase: 'publish', rate: 0 });
    const publishStart = performance.now();
    for (let sent = 0; sent < o.messages;) {
      const n = Math.min(o.batch, o.messages - sent);
      const batch: MessageInput[] = Array.from({ length: n }, () => ({ payload }));
      const t0 = performance.now();
      await c.publish(name, batch);
      latencyUs.recordValue(Math.round((performance.now() - t0) * 1000));
      sent += n;
      bar.update(sent, { rate: Math.round(sent / ((performance.now() - publishStart) / 1000)) });
    }
    const publishMs = performance.now() - publishStart;
    bar.stop();
    bar.start(o.messages, 0, { phase: 'consume', rate: 0 });
    const consumeStart = performance.now();
    await drain(c, name, o, (got) =>
      bar.update(got, { rate: Math.round(got / ((performance.now() - consumeStart) / 1000)) }),
    );
    const consumeMs = performance.now() - consumeStart;
    bar.stop();
    return {
      kind: o.kind,
      messages: o.messages,
      sizeBytes: o.size,
      batch: o.batch,
      publishPerSecond: Math.round(o.messages / (publishMs / 1000)),
      consumePerSecond: Math.round(o.messages / (consumeMs / 1000)),
      publishBatchLatencyMs: {
        p50: latencyUs.getValueAtPercentile(50) / 1000,
        p99: latencyUs.getValueAtPercentile(99) / 1000,
        max: latencyUs.maxValue / 1000,
      },
    };
  } finally {
    bar.stop();
    if (!o.keep) await (o.kind === 'queue' ? c.deleteQueue(name) : c.deleteTopic(name)).catch(() => undefined);
  }
}

async function drain(c: CliClient, name: string, o: BenchOpts, progress: (got: number) => void): Promise<void> {
  let got = 0;
  if (o.kind === 'queue') {
    while (got < o.messages) {
      const batch = await c.receive(name, { max: Math.min(1000, o.messages - got), waitMs: 1000 });
      await Promise.all(batch.map((m) => m.ack()));
      got += batch.length;
      progress(got);
    }
    return;
  }
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const sub = await c.subscribe(name, { from: 'earliest' }, () => {
    got++;
    if (got % 100 === 0 || got === o.messages) progress(got);
    if (got === o.messages) done();
  });
  await finished;
  await sub.close();
}
