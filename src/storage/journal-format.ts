// The journal file format, as pure functions.
//
//   file   = header frame*
//   header = magic "WJNL" (4 bytes) | version uint32 BE (= 1)
//   frame  = crc uint32 BE | length uint32 BE | payload (length bytes)
//            crc = CRC32C of the 4 length bytes and the payload (so a zeroed region never
//            passes as an empty frame: CRC32C of four zero bytes is not zero)
import { crc32c } from '@node-rs/crc32';
import { WharfError } from '../common/index.js';

export const JOURNAL_MAGIC = Buffer.from('WJNL', 'latin1');
export const JOURNAL_VERSION = 1;
export const JOURNAL_HEADER_BYTES = 8;
export const FRAME_HEADER_BYTES = 8;
/** Sanity bound on one entry; journals hold small state changes. */
export const MAX_JOURNAL_ENTRY_BYTES = 64 * 1024 * 1024;

export function journalHeader(): Buffer {
  const buf = Buffer.alloc(JOURNAL_HEADER_BYTES);
  JOURNAL_MAGIC.copy(buf, 0);
  buf.writeUInt32BE(JOURNAL_VERSION, 4);
  return buf;
}

/** One frame in one buffer; the payload is copied, so the caller may reuse its array. */
export function encodeFrame(payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  buf.writeUInt32BE(payload.length, 4);
  buf.set(payload, FRAME_HEADER_BYTES);
  buf.writeUInt32BE(crc32c(buf.subarray(4)), 0);
  return buf;
}

/** Length of a valid frame at pos, or -1. */
function validFrameBytes(buf: Buffer, pos: number): number {
  if (pos + FRAME_HEADER_BYTES > buf.length) return -1;
  const length = buf.readUInt32BE(pos + 4);
  if (length > MAX_JOURNAL_ENTRY_BYTES || pos + FRAME_HEADER_BYTES + length > buf.length) return -1;
  if (crc32c(buf.subarray(pos + 4, pos + FRAME_HEADER_BYTES + length)) !== buf.readUInt32BE(pos)) return -1;
  return FRAME_HEADER_BYTES + length;
}

export interface ParsedJournal {
  /** Payloads as views into the file buffer. */
  entries: Buffer[];
  /** Bytes of the valid prefix; the rest is a torn tail to cut. */
  validBytes: number;
}

/**
 * Parses a whole journal file. A bad frame with nothing valid after it is a torn tail (cut);
 * a bad frame followed by a valid one is corruption (CORRUPT_DATA naming file and byte).
 */
export function parseJournal(buf: Buffer, fileName: string): ParsedJournal {
  if (buf.length < JOURNAL_HEADER_BYTES) {
    // A crash while creating the file: nothing was ever acknowledged in it.
    if (
      JOURNAL_MAGIC.subarray(0, buf.length).equals(buf.subarray(0, JOURNAL_MAGIC.length)) ||
      buf.every((b) => b === 0)
    )
      return { entries: [], validBytes: 0 };
  }
  if (
    buf.length < JOURNAL_HEADER_BYTES ||
    !buf.subarray(0, 4).equals(JOURNAL_MAGIC) ||
    buf.readUInt32BE(4) !== JOURNAL_VERSION
  )
    throw new WharfError('CORRUPT_DATA', `${fileName} is not a Wharf journal (bad header); restore it from a backup`, {
      details: { file: fileName, position: 0 },
    });
  const entries: Buffer[] = [];
  let pos = JOURNAL_HEADER_BYTES;
  while (pos < buf.length) {
    const size = validFrameBytes(buf, pos);
    if (size < 0) break;
    entries.push(buf.subarray(pos + FRAME_HEADER_BYTES, pos + size));
    pos += size;
  }
  // Zeros to the end are space written ahead of the data (preallocation.ts), not damage. A valid
  // frame is never all zeros (its CRC covers its length), so one can only start before the last
  // non-zero byte: the search for a valid frame after a bad one stops there.
  const contentEnd = endOfNonZero(buf, pos);
  if (pos < contentEnd) {
    for (let q = pos + 1; q < contentEnd; q++) {
      if (validFrameBytes(buf, q) > 0) {
        throw new WharfError(
          'CORRUPT_DATA',
          `corrupt journal entry in ${fileName} at byte ${pos} (a valid entry follows at byte ${q}); ` +
            'restore the file from a backup',
          { details: { file: fileName, position: pos } },
        );
      }
    }
  }
  return { entries, validBytes: pos };
}

/** The end of buf after dropping the zeros that run to its end (never below from). */
function endOfNonZero(buf: Buffer, from: number): number {
  let end = buf.length;
  while (end > from && buf[end - 1] === 0) end--;
  return end;
}
