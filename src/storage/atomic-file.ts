// Whole-file replacement that a crash cannot tear: write a temporary file, fsync it, rename it
// over the target, fsync the directory. Readers see the old bytes or the new, never a mix.
import fs from 'node:fs';
import { dirname } from 'node:path';
import { closeFd, fdatasync, fsyncDir, isNotFound, openFd, writevAll } from './file-io.js';

export const TEMP_SUFFIX = '.tmp';

export async function writeFileAtomic(path: string, chunks: Uint8Array[]): Promise<void> {
  const temp = path + TEMP_SUFFIX;
  const fd = await openFd(temp, 'w');
  try {
    const buffers = chunks.map((c) => (Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.length)));
    if (buffers.length > 0) await writevAll(fd, buffers, 0);
    await fdatasync(fd);
  } finally {
    await closeFd(fd);
  }
  await fs.promises.rename(temp, path);
  await fsyncDir(dirname(path));
}

/** The file's bytes, or null when it does not exist. */
export async function readFileOrNull(path: string): Promise<Buffer | null> {
  try {
    return await fs.promises.readFile(path);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}
