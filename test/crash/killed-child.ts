// Runs a crash-test child (`node --import tsx <script> ...args`), hands each stdout line to onLine as
// space-separated fields, SIGKILLs it killAfterMs after it prints READY, and resolves once it died by
// that SIGKILL (any other exit rejects with its stderr).
import { spawn } from 'node:child_process';

export function runKilledChild(script: string, args: string[], killAfterMs: number, onLine: (fields: string[]) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const fields = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (fields[0] === 'READY') setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        onLine(fields);
      }
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${code}: ${stderr}`))));
  });
}
