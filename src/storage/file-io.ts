// Thin promise wrappers over Node's fd-based fs callbacks: positioned reads and writes, writev
// that survives short writes, fdatasync and directory fsync. The callback API skips the
// FileHandle object layer, which matters on the append hot path.
import fs from 'node:fs';
import { dirname } from 'node:path';

/**
 * O_DSYNC where a write through it is as durable as a write and an fdatasync (Linux); null
 * elsewhere (Windows has no such flag; macOS's fdatasync is F_FULLFSYNC, which O_DSYNC does not
 * match), where fsync 'always' keeps a write and an fdatasync per round.
 */
export const DSYNC_FLAG: number | null =
  process.platform === 'linux' && typeof fs.constants.O_DSYNC === 'number' ? fs.constants.O_DSYNC : null;

/** Whether files written under this policy are opened with DSYNC_FLAG (a round is one durable write). */
export function durableWritesFor(fsync: 'always' | 'interval' | 'never'): boolean {
  return fsync === 'always' && DSYNC_FLAG !== null;
}

export function openFd(path: string, flags: number | string, mode = 0o644): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

export function ftruncate(fd: number, lengthBytes: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, lengthBytes, (err) => (err ? reject(err) : resolve())));
}

export function fstatSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st.size))));
}

function readOnce(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** Reads up to lengthBytes at position; shorter only at end of file. */
export async function readAt(fd: number, position: number, lengthBytes: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(lengthBytes);
  let got = 0;
  while (got < lengthBytes) {
    const n = await readOnce(fd, buf, got, lengthBytes - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === lengthBytes ? buf : buf.subarray(0, got);
}

function writevOnce(fd: number, buffers: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.writev(fd, buffers, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** Writes all buffers at position, in as few syscalls as the kernel allows. */
export async function writevAll(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let total = 0;
  for (const b of buffers) total += b.length;
  let written = await writevOnce(fd, buffers, position);
  while (written < total) {
    // Short write (rare: signals, quotas): continue with what is left.
    const n = await writevOnce(fd, buffersAfter(buffers, written), position + written);
    if (n === 0) throw new Error(`writev made no progress at byte ${position + written}`);
    written += n;
  }
}

/** The part of buffers after their first skipBytes bytes, as views. */
function buffersAfter(buffers: Buffer[], skipBytes: number): Buffer[] {
  let skip = skipBytes;
  const rest: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}

/**
 * writevAll on the calling thread: for a round so small, and landing on blocks already written
 * (preallocation.ts), that a trip through the I/O pool costs more than the write.
 */
export function writevAllSync(fd: number, buffers: Buffer[], position: number): void {
  let total = 0;
  for (const b of buffers) total += b.length;
  let written = fs.writevSync(fd, buffers, position);
  while (written < total) {
    const n = fs.writevSync(fd, buffersAfter(buffers, written), position + written);
    if (n === 0) throw new Error(`writev made no progress at byte ${position + written}`);
    written += n;
  }
}

/** Makes a directory's entries (created, renamed, deleted files) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = await openFd(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/**
 * mkdir -p that survives a crash: each directory it creates is fsynced into its parent, so
 * fsynced files inside cannot vanish with a directory entry that never reached the disk.
 */
export async function mkdirDurable(dir: string): Promise<void> {
  const firstCreated = await fs.promises.mkdir(dir, { recursive: true });
  if (firstCreated === undefined) return;
  const created: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    created.push(d);
    if (d === firstCreated || dirname(d) === d) break;
  }
  for (const d of created) await fsyncDir(dirname(d));
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}
