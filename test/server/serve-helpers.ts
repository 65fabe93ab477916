// Runs the real `wharf` command in a child process (through tsx on src/cli/main.ts, which works on a
// fresh clone without a build) on ephemeral ports and a temp data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const MAIN = join(REPO, 'src/cli/main.ts');

/** Env for children: no WHARF_* leaking in from the developer's shell. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WHARF_')) env[k] = v;
  return { ...env, ...extra };
}

export interface Served {
  proc: ChildProcess;
  nativeUrl: string;
  httpUrl: string;
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export async function tempDir(prefix = 'wharf-serve-'): Promise<{ path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

export async function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', ...args], {
    cwd: REPO,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const urls = await new Promise<{ nativeUrl: string; httpUrl: string }>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`wharf serve did not start in time:\n${out}`)), 25_000);
    const check = (): void => {
      const m = /native (wharf:\/\/[\d.]+:\d+)\s+http (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePromise({ nativeUrl: m[1], httpUrl: m[2] });
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`wharf serve exited with ${code}:\n${out}`));
    });
  });
  return { proc, ...urls, output: () => out, exited };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function wharf(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<CliRun> {
  return new Promise((resolvePromise) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      cwd: REPO,
      env: cleanEnv(env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdin.end(stdin ?? '');
    proc.once('exit', (code) => resolvePromise({ code, stdout, stderr }));
  });
}
