// Reads wire primitives from a frame body with a bounds check on every read, so a truncated or
// lying frame becomes PROTOCOL_ERROR, never an out-of-range read. One reader is reused per
// connection (reset per frame): decoding a frame allocates only the values it returns.
import { WharfError, latin1Text, readInt64, utf8Text } from '../common/index.js';
import { NULL_LENGTH } from './wire-writer.js';

const EMPTY = Buffer.alloc(0);
/** Strings up to this many bytes are checked for ASCII in JavaScript first (ids, receipts, names). */
const SHORT_STRING_BYTES = 64;
/** repeatedStr remembers strings up to this many bytes (producer ids are at most 256). */
const MAX_REPEATED_BYTES = 256;

/**
 * UTF-8 text of buf[start, end). Short ASCII strings (message ids, receipts, names: most strings on
 * the wire) take latin1Slice, several times cheaper than a UTF-8 decode of the same bytes.
 */
function utf8At(buf: Buffer, start: number, end: number): string {
  if (end - start > SHORT_STRING_BYTES) return utf8Text(buf, start, end);
  for (let i = start; i < end; i++) if (buf[i] >= 0x80) return utf8Text(buf, start, end);
  return latin1Text(buf, start, end);
}

export class WireReader {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;
  /** Names the op being decoded, for error messages. */
  what = 'frame';
  /** repeatedStr's last bytes and text. */
  private lastRepeated: Uint8Array = EMPTY;
  private lastRepeatedText = '';

  reset(buf: Buffer, start = 0, end = buf.length, what = 'frame'): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.what = what;
    return this;
  }

  fail(problem: string): WharfError {
    return new WharfError(
      'PROTOCOL_ERROR',
      `malformed ${this.what}: ${problem} at byte ${this.pos}; check the client against docs/protocol.md`,
    );
  }

  need(n: number, field: string): void {
    if (this.end - this.pos < n) throw this.fail(`truncated ${field} (needs ${n} bytes, ${this.end - this.pos} left)`);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(field = 'u8'): number {
    this.need(1, field);
    return this.buf[this.pos++];
  }

  u16(field = 'u16'): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(field = 'u32'): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  i32(field = 'i32'): number {
    this.need(4, field);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(field = 'u64'): number {
    this.need(8, field);
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    if (hi > 0x1fffff) throw this.fail(`${field} is larger than 2^53-1`);
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }

  i64(field = 'i64'): number {
    this.need(8, field);
    // Outside -(2^53-1)..2^53-1 the sum of the two halves is no safe integer, exact or not.
    const v = readInt64(this.buf, this.pos);
    if (!Number.isSafeInteger(v)) throw this.fail(`${field} is outside the safe integer range`);
    this.pos += 8;
    return v;
  }

  str(field = 'str'): string {
    const n = this.u16(`${field} length`);
    this.need(n, field);
    const s = utf8At(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /**
   * A str that usually repeats the previous one read this way (an idempotent producer's id, on every
   * message of a batch): the same bytes give back the same string without decoding them again.
   */
  repeatedStr(field = 'str'): string {
    const n = this.u16(`${field} length`);
    this.need(n, field);
    const buf = this.buf;
    const start = this.pos;
    this.pos += n;
    const last = this.lastRepeated;
    if (last.length === n) {
      let same = true;
      for (let i = 0; i < n && same; i++) same = buf[start + i] === last[i];
      if (same) return this.lastRepeatedText;
    }
    const text = utf8At(buf, start, start + n);
    if (n <= MAX_REPEATED_BYTES) {
      // A copy: the frame's buffer is reused for the next frames.
      this.lastRepeated = Uint8Array.prototype.slice.call(buf, start, start + n);
      this.lastRepeatedText = text;
    } else {
      this.lastRepeated = EMPTY;
      this.lastRepeatedText = '';
    }
    return text;
  }

  lstr(field = 'lstr'): string {
    const n = this.u32(`${field} length`);
    this.need(n, field);
    const s = utf8At(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** A view into the frame (no copy); null for the null length. */
  bytes(field = 'bytes'): Buffer | null {
    const n = this.u32(`${field} length`);
    if (n === NULL_LENGTH) return null;
    this.need(n, field);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /**
   * A private copy of the bytes (null for the null length). Small ones come from Node's shared
   * buffer pool, so a copied payload costs no allocation of its own.
   */
  bytesCopy(field = 'bytes'): Buffer | null {
    const n = this.u32(`${field} length`);
    if (n === NULL_LENGTH) return null;
    this.need(n, field);
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  json(field = 'json'): unknown {
    const text = this.lstr(field);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw this.fail(`${field} is not valid JSON`);
    }
  }

  /** Every op's body must be consumed exactly; trailing bytes mean client and server disagree. */
  done(): void {
    if (this.pos !== this.end) throw this.fail(`${this.end - this.pos} unexpected trailing bytes`);
  }
}
