// The storage root's LOCK file: one process per data directory. The file holds the owner's pid;
// a lock whose pid is no longer alive on this host (a crashed broker) is taken over.
import fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { WharfError } from '../common/index.js';
import { closeFd, fdatasync, fsyncDir, isNotFound, openFd, writevAll } from './file-io.js';
import { LOCK_FILE_NAME } from './storage-paths.js';

interface LockOwner {
  pid: number;
  hostname: string;
  startedAtMs: number;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by another user
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const owner = JSON.parse(text) as LockOwner;
    return Number.isSafeInteger(owner.pid) && owner.pid > 0 ? owner : null;
  } catch {
    return null;
  }
}

/** Takes the lock on rootDir; the returned function releases it. */
export async function acquireLock(rootDir: string): Promise<() => Promise<void>> {
  const path = join(rootDir, LOCK_FILE_NAME);
  const me: LockOwner = { pid: process.pid, hostname: hostname(), startedAtMs: Date.now() };
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = await openFd(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let text: string;
      try {
        text = await fs.promises.readFile(path, 'utf8');
      } catch (readErr) {
        if (isNotFound(readErr)) continue; // released meanwhile: try again
        throw readErr;
      }
      const owner = parseOwner(text);
      // Another host's pid cannot be checked from here: treat it as alive.
      if (owner !== null && (owner.hostname !== me.hostname || isAlive(owner.pid))) {
        throw new WharfError(
          'UNAVAILABLE',
          `the data directory ${rootDir} is in use by process ${owner.pid} on ${owner.hostname} (see ${path}); ` +
            'stop that process or choose another data directory',
          { details: { lockFile: path, pid: owner.pid, hostname: owner.hostname } },
        );
      }
      // Stale (its process died, or the file was torn by a crash while written): take it over.
      await fs.promises.rm(path, { force: true });
      continue;
    }
    try {
      await writevAll(fd, [Buffer.from(JSON.stringify(me) + '\n')], 0);
      await fdatasync(fd);
    } finally {
      await closeFd(fd);
    }
    await fsyncDir(rootDir);
    return async () => {
      await fs.promises.rm(path, { force: true });
    };
  }
  throw new WharfError(
    'UNAVAILABLE',
    `could not take the lock ${path}: it keeps changing; is another process starting?`,
  );
}
