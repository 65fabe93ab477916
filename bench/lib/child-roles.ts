// Multi-process benchmarks run their roles (server, producer, consumer) as child processes of the
// same script: spawning one, reading the lines it prints, and its CPU time from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Wall-clock ms with sub-ms precision, comparable across processes on one host (latency stamps). */
/** performance.timeOrigin is a getter: read once. */
const TIME_ORIGIN_MS = performance.timeOrigin;
export const nowMs = (): number => TIME_ORIGIN_MS + performance.now();

export interface RoleProcess {
  proc: ChildProcess;
  /** The lines it prints on stdout, in order; ends once its output is closed. */
  lines: AsyncIterableIterator<string>;
}

/**
 * Runs `script` with `args` in a child Node process (through tsx). BENCH_NODE_FLAGS adds Node flags
 * to every child, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof' to profile each role.
 */
export function spawnRole(script: string, args: string[]): RoleProcess {
  const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  const proc = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const queue: string[] = [];
  let waiter: (() => void) | null = null;
  let buf = '';
  let ended = false;
  proc.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      queue.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    waiter?.();
  });
  // 'close', not 'exit': the process can exit before its last output has been read.
  proc.on('close', () => {
    ended = true;
    waiter?.();
  });
  const lines = (async function* () {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      if (ended) return;
      await new Promise<void>((r) => (waiter = r));
      waiter = null;
    }
  })();
  return { proc, lines };
}

/** The next line starting with prefix (earlier lines are skipped); fails if the child ends first. */
export async function nextLine(it: AsyncIterableIterator<string>, prefix: string): Promise<string> {
  for (;;) {
    const r = await it.next();
    if (r.done === true) throw new Error(`child ended before printing ${prefix}`);
    if (r.value.startsWith(prefix)) return r.value;
  }
}

/** User + system CPU seconds a process has used so far, or null once it is gone. */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}
