// `npm run bench`: runs every benchmark program in bench/ as its own process, collects the JSON
// lines they print, optionally runs the peer brokers' harness in the same run, and writes
// docs/benchmarks.md with a plot (docs/benchmarks.svg).
//
// Usage: npm run bench [-- --only topics,queues] [-- --peers <dir-of-peer-harness>] [-- --quick]
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync, existsSync, cpSync, mkdtempSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderBarChartSvg } from './lib/svg-chart.js';
import { renderReport, type BenchRow } from './lib/report.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const rootDir = join(benchDir, '..');
const args = process.argv.slice(2);
const argValue = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = argValue('--only')?.split(',');
const peersArg = argValue('--peers');
/** Benchmarks that are not throughput programs of their own (the runner and its helpers). */
const NOT_PROGRAMS = new Set(['run.ts']);

function runProgram(cmd: string, cmdArgs: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<BenchRow[]> {
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      process.stdout.write(chunk);
    });
    child.on('close', () => {
      const rows: BenchRow[] = [];
      for (const line of out.split('\n')) {
        const text = line.trim();
        if (!text.startsWith('{')) continue;
        try {
          rows.push(JSON.parse(text) as BenchRow);
        } catch {
          // a progress line that happens to start with '{' is not a result
        }
      }
      resolve(rows);
    });
  });
}

async function main(): Promise<void> {
  const programs = readdirSync(benchDir)
    .filter((f) => f.endsWith('.ts') && !NOT_PROGRAMS.has(f))
    .filter((f) => !only || only.some((o) => f.startsWith(o)))
    .sort();
  const results: Array<{ program: string; rows: BenchRow[] }> = [];
  for (const program of programs) {
    console.error(`\n== bench/${program}`);
    const rows = await runProgram(process.execPath, ['--import', 'tsx', join(benchDir, program)], rootDir, process.env);
    results.push({ program, rows });
  }

  let peerRows: BenchRow[] = [];
  const peersSource = peersArg ?? join(rootDir, '..', 'shared', 'bench', 'peers');
  if (!only && existsSync(join(peersSource, 'run-all.mjs'))) {
    // The peer harness may sit on a read-only share: run a writable copy.
    const work = mkdtempSync(join(tmpdir(), 'wharf-peers-'));
    cpSync(peersSource, work, { recursive: true });
    console.error(`\n== peers (${work})`);
    const installed = existsSync(join(work, 'node_modules'))
      ? []
      : await runProgram('npm', ['ci', '--silent'], work, process.env);
    void installed;
    peerRows = await runProgram(process.execPath, ['run-all.mjs', '--only', 'rabbitmq,nats,redis-streams'], work, {
      ...process.env,
      RESULTS_DIR: join(work, 'results'),
    });
  }

  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  mkdirSync(join(rootDir, 'docs'), { recursive: true });
  const svg = renderBarChartSvg(results, peerRows);
  writeFileSync(join(rootDir, 'docs', 'benchmarks.svg'), svg);
  writeFileSync(join(rootDir, 'docs', 'benchmarks.md'), renderReport({ machine, date: new Date(), results, peerRows }));
  console.error('\nwrote docs/benchmarks.md and docs/benchmarks.svg');
}

await main();
