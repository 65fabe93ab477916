// Runs a crash-test child (`node --import tsx <script> ...args`), SIGKILLs it killAfterMs after it
// says READY, and once it died by that SIGKILL (any other exit rejects with its stderr) hands each
// line of its report (child-report.ts) to onLine as space-separated fields, in order.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function runKilledChild(
  script: string,
  args: string[],
  killAfterMs: number,
  onLine: (fields: string[]) => void,
): Promise<void> {
  const reportDir = mkdtempSync(join(tmpdir(), 'wharf-crash-report-'));
  const reportPath = join(reportDir, 'report.txt');
  return new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WHARF_CRASH_REPORT: reportPath },
    });
    let stdout = '';
    let stderr = '';
    let armed = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!armed && stdout.includes('READY\n')) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${code}: ${stderr}`)),
    );
  })
    .then(() => {
      let text = '';
      try {
        text = readFileSync(reportPath, 'utf8');
      } catch {
        // killed before it wrote a line
      }
      // A line cut by the kill has no newline yet: it did not happen as far as the parent knows.
      const lines = text.split('\n');
      lines.pop();
      for (const line of lines) onLine(line.split(' '));
    })
    .finally(() => rmSync(reportDir, { recursive: true, force: true }));
}
