// An open embedded consumer or subscription keeps its process running, as an open server socket
// would, and closing it (or the broker) lets the process exit: a consume-only worker does not quit
// because its queue is empty at the moment.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('./keep-alive-child.ts', import.meta.url));

function run(kind: string, closeWhat: string): Promise<{ code: number | null; stdout: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, kind, closeWhat], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the child did not exit after its ${kind} was closed; it printed: ${stdout}`));
    }, 20_000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, ms: Date.now() - started });
    });
  });
}

describe('an open consumer or subscription keeps the process running', () => {
  for (const [kind, closeWhat] of [
    ['consumer', 'flow'],
    ['subscription', 'flow'],
    ['consumer', 'broker'],
    ['subscription', 'delete'],
  ]) {
    it(
      `${kind}, until ${closeWhat === 'broker' ? 'the broker is closed' : closeWhat === 'delete' ? 'its topic is deleted' : 'it is closed'}`,
      { timeout: 30_000 },
      async () => {
        const r = await run(kind, closeWhat);
        // Without the hold the child would exit right after "open", before its close timer fires.
        expect(r.stdout).toBe('open\nclosed\n');
        expect(r.code).toBe(0);
      },
    );
  }
});
