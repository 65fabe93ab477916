// Opening a log directory: find the segment files, clear leftovers of interrupted operations,
// recover each segment (recovery.ts), and check that the segments chain offset to offset.
import fs from 'node:fs';
import { join } from 'node:path';
import { WharfError } from '../common/index.js';
import { fdatasync, fsyncDir, mkdirDurable } from './file-io.js';
import { recoverSegment } from './recovery.js';
import { emptyIndexes, INDEX_SUFFIX, LOG_SUFFIX, parseSegmentLogName, Segment, TIME_INDEX_SUFFIX } from './segment.js';

/** Segments of the log in dir, oldest first; the last is active (fd open, indexes in memory). */
export async function openSegments(
  dir: string,
  indexIntervalBytes: number,
  fullScan: boolean,
  durableWrites: boolean,
): Promise<Segment[]> {
  await mkdirDurable(dir);
  const names = await fs.promises.readdir(dir);
  const bases = names
    .map(parseSegmentLogName)
    .filter((b): b is number => b !== null)
    .sort((a, b) => a - b);
  await removeLeftovers(dir, names);

  const segments = bases.map((base) => new Segment(dir, base, indexIntervalBytes, durableWrites));
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const isLast = i === segments.length - 1;
    const report = await recoverSegment(seg, { isLast, fullScan });
    // Later rounds make only their own bytes durable (O_DSYNC): what a crash or an earlier run under
    // another fsync policy left unsynced in the file is synced once now (a torn tail's truncation
    // synced it already).
    if (isLast && durableWrites && report.truncatedBytes === 0) await fdatasync(seg.fd!);
    if (!isLast) {
      if (report.indexChanged) await seg.writeIndexFiles();
      // Older segments keep no fd and no index in memory until read.
      seg.indexes = null;
      await seg.closeFd();
    }
  }
  for (let i = 0; i + 1 < segments.length; i++) {
    const seg = segments[i];
    const next = segments[i + 1];
    if (seg.nextOffset !== next.baseOffset) {
      throw new WharfError(
        'CORRUPT_DATA',
        `log ${dir} has a gap: ${seg.logPath} ends before offset ${seg.nextOffset} (byte ${seg.sizeBytes}) but the next ` +
          `segment starts at ${next.baseOffset}. Restore the partition from a backup or remove the segments after the gap.`,
        { details: { file: seg.logPath, position: seg.sizeBytes } },
      );
    }
  }
  if (segments.length === 0) {
    const seg = new Segment(dir, 0, indexIntervalBytes, durableWrites);
    seg.indexes = emptyIndexes();
    await seg.acquire(true);
    seg.release();
    await fsyncDir(dir);
    segments.push(seg);
  }
  return segments;
}

/** Index files without their log (a deletion interrupted midway) and temporary files. */
async function removeLeftovers(dir: string, names: string[]): Promise<void> {
  const logs = new Set(names.filter((n) => n.endsWith(LOG_SUFFIX)).map((n) => n.slice(0, -LOG_SUFFIX.length)));
  for (const name of names) {
    const stem = name.endsWith(INDEX_SUFFIX)
      ? name.slice(0, -INDEX_SUFFIX.length)
      : name.endsWith(TIME_INDEX_SUFFIX)
        ? name.slice(0, -TIME_INDEX_SUFFIX.length)
        : null;
    if ((stem !== null && !logs.has(stem)) || name.endsWith('.tmp'))
      await fs.promises.rm(join(dir, name), { force: true });
  }
}
