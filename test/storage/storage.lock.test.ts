// The LOCK file: one process per data directory, stale locks of dead processes taken over.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDiskStorage } from '../../src/storage/index.js';
import { expectWharfError, rejectionOf, removeDir, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

function mkdir(): string {
  const dir = tempDir('wharf-lock-');
  dirs.push(dir);
  return dir;
}

function writeLock(dir: string, pid: number): void {
  fs.writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid, hostname: hostname(), startedAtMs: Date.now() }) + '\n');
}

describe('storage LOCK', () => {
  it('refuses a second open of the same directory while the first is open, with UNAVAILABLE', async () => {
    const dir = mkdir();
    const first = await openDiskStorage(dir);
    const err = expectWharfError(await rejectionOf(openDiskStorage(dir)), 'UNAVAILABLE');
    expect(err.message).toContain(dir);
    expect(err.message).toContain(`process ${process.pid}`);
    await first.close();
    expect(fs.existsSync(join(dir, 'LOCK'))).toBe(false);
    const second = await openDiskStorage(dir); // released on close
    await second.close();
  });

  it('refuses a directory locked by another live process, and takes it over once that process is gone', async () => {
    const dir = mkdir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeLock(dir, child.pid!);
      const err = expectWharfError(await rejectionOf(openDiskStorage(dir)), 'UNAVAILABLE');
      expect(err.message).toContain(`process ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const storage = await openDiskStorage(dir);
    expect(JSON.parse(fs.readFileSync(join(dir, 'LOCK'), 'utf8')).pid).toBe(process.pid);
    await storage.close();
  });

  it('takes over a stale lock from a dead pid and an unreadable (torn) lock file', async () => {
    const dir = mkdir();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeLock(dir, dead);
    await (await openDiskStorage(dir)).close();
    fs.writeFileSync(join(dir, 'LOCK'), '{"pid": 12');
    await (await openDiskStorage(dir)).close();
  });

  it('a second process opening a locked directory fails with UNAVAILABLE', async () => {
    const dir = mkdir();
    const storage = await openDiskStorage(dir);
    try {
      const script = `
        import { openDiskStorage } from ${JSON.stringify(new URL('../../src/storage/index.ts', import.meta.url).href)};
        try { await openDiskStorage(${JSON.stringify(dir)}); console.log('OPENED'); }
        catch (e) { console.log(e.code + ': ' + e.message); }`;
      const out = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(out.stdout).toContain('UNAVAILABLE');
      expect(out.stdout).toContain(`process ${process.pid}`);
    } finally {
      await storage.close();
    }
  });
});
