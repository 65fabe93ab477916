// Child of topics.crash.test.ts: publishes forever with fsync 'always' and reports one line per
// message whose publish resolved: "ok <run> <seq> <partition> <offset>". The parent SIGKILLs it.
// Reports are synchronous file writes (child-report.ts), so a reported line was really resolved and
// none is lost with the process.
import { Broker } from '../../src/broker/index.js';
import { isWharfError } from '../../src/common/index.js';
import { report, reportReady } from './child-report.js';

const [dataDir, run] = process.argv.slice(2);

/** Payload bytes derived from (run, seq), so the parent can check them byte for byte. */
function bodyFor(runId: string, seq: number): string {
  return `${runId}:${seq}:`.padEnd(64 + (seq % 200), String.fromCharCode(97 + (seq % 26)));
}

async function main(): Promise<void> {
  const broker = await Broker.open({ dataDir, fsync: 'always' });
  try {
    await broker.createTopic('crash', { partitions: 3, segmentBytes: 64 * 1024 });
  } catch (err) {
    if (!isWharfError(err, 'ALREADY_EXISTS')) throw err;
  }
  reportReady();
  let seq = 0;
  const worker = async (): Promise<never> => {
    for (;;) {
      const size = 1 + (seq % 4);
      const batch = Array.from({ length: size }, () => {
        const s = seq++;
        return { key: `key-${s % 7}`, payload: { run, seq: s, body: bodyFor(run, s) } };
      });
      const results = await broker.publish('crash', batch);
      results.forEach((r, i) =>
        report(`ok ${run} ${(batch[i].payload as { seq: number }).seq} ${r.partition} ${r.offset}`),
      );
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

void main().catch((err: unknown) => {
  process.stderr.write(`child failed: ${String(err)}\n`);
  process.exit(1);
});
