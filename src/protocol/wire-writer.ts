// Appends wire primitives (big-endian integers, length-prefixed strings and bytes) to one growable
// buffer. One writer is reused for many frames, so encoding a frame allocates only its final copy.
import { WharfError, writeInt64 } from '../common/index.js';

/** Sentinel length of an absent byte string (`bytes` with value null). */
export const NULL_LENGTH = 0xffffffff;
/** Largest integer the u64 fields carry: JavaScript's safe integer range. */
export const MAX_U64 = Number.MAX_SAFE_INTEGER;
/** take() copies outputs smaller than this (into Node's pooled small buffers) and hands over larger ones. */
const TAKE_WITHOUT_COPY_BYTES = 16 * 1024;
/** Largest buffer recycle() keeps for reuse; a larger one (a rare huge frame) goes to the collector. */
const MAX_SPARE_BYTES = 8 * 1024 * 1024;
/** Strings up to this many characters try the ASCII fast path. */
const SHORT_STRING_CHARS = 64;

/**
 * A number that does not fit its fixed-width field. Refused rather than wrapped or truncated: a
 * user's number can reach a field (a receive's max, a consumer's credits), and a wrapped one would
 * mean something else on the other side.
 */
function outOfRange(v: number, range: string): WharfError {
  return new WharfError('INVALID_ARGUMENT', `${v} is not an integer in ${range}`);
}

export class WireWriter {
  buf: Buffer;
  pos = 0;
  /**
   * A buffer take() handed over and recycle() gave back, used by the next large take() instead of
   * a fresh one. A fresh megabyte per flush was most of the memory a busy connection allocated, and
   * allocations outside the JavaScript heap are what set the pace of its garbage collections.
   */
  private spare: Buffer | null = null;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  reset(): this {
    this.pos = 0;
    return this;
  }

  ensure(extraBytes: number): void {
    const need = this.pos + extraBytes;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    if ((v & 0xff) !== v) throw outOfRange(v, '0..255');
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    if ((v & 0xffff) !== v) throw outOfRange(v, '0..65535');
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    if (v >>> 0 !== v) throw outOfRange(v, '0..4294967295');
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  i32(v: number): this {
    if ((v | 0) !== v) throw outOfRange(v, '-2147483648..2147483647');
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  /** Unsigned 64-bit, from a safe integer (high 32 bits, then low 32 bits). */
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new WharfError('INVALID_ARGUMENT', `${v} is not an integer in 0..2^53-1`);
    this.ensure(8);
    this.buf.writeUInt32BE(Math.floor(v / 0x100000000), this.pos);
    this.buf.writeUInt32BE(v % 0x100000000, this.pos + 4);
    this.pos += 8;
    return this;
  }

  /** Signed 64-bit two's complement, from a safe integer (-1 is the usual "none"). */
  i64(v: number): this {
    if (!Number.isSafeInteger(v))
      throw new WharfError('INVALID_ARGUMENT', `${v} is not an integer in -(2^53-1)..2^53-1`);
    // Two 32-bit halves, as the record batch's int64 fields: no BigInt per publish result and offset.
    this.ensure(8);
    writeInt64(this.buf, this.pos, v);
    this.pos += 8;
    return this;
  }

  /**
   * Writes a short string that is all ASCII byte by byte (several times cheaper than measuring and
   * encoding it as UTF-8); returns false, having written nothing, for any other string.
   */
  private asciiAfter(prefixBytes: number, s: string): boolean {
    const len = s.length;
    if (len > SHORT_STRING_CHARS) return false;
    this.ensure(prefixBytes + len);
    const buf = this.buf;
    let p = this.pos + prefixBytes;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return false;
      buf[p++] = c;
    }
    if (prefixBytes === 2) buf.writeUInt16BE(len, this.pos);
    else buf.writeUInt32BE(len, this.pos);
    this.pos = p;
    return true;
  }

  /** str: u16 byte length + UTF-8. */
  str(s: string): this {
    if (this.asciiAfter(2, s)) return this;
    const n = Buffer.byteLength(s, 'utf8');
    if (n > 0xffff)
      throw new WharfError('INVALID_ARGUMENT', `string of ${n} bytes is longer than 65535 bytes; shorten it`);
    this.ensure(2 + n);
    this.buf.writeUInt16BE(n, this.pos);
    this.buf.write(s, this.pos + 2, n, 'utf8');
    this.pos += 2 + n;
    return this;
  }

  /** str from bytes that are already UTF-8 (a stored id or header value): u16 byte length + the bytes. */
  strBytes(b: Uint8Array): this {
    const n = b.length;
    if (n > 0xffff)
      throw new WharfError('INVALID_ARGUMENT', `string of ${n} bytes is longer than 65535 bytes; shorten it`);
    this.ensure(2 + n);
    const buf = this.buf;
    buf.writeUInt16BE(n, this.pos);
    const at = this.pos + 2;
    // Ids and header values are short: a byte loop beats TypedArray#set's call overhead.
    if (n <= SHORT_STRING_CHARS) for (let i = 0; i < n; i++) buf[at + i] = b[i];
    else buf.set(b, at);
    this.pos = at + n;
    return this;
  }

  /** lstr: u32 byte length + UTF-8. */
  lstr(s: string): this {
    if (this.asciiAfter(4, s)) return this;
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(4 + n);
    this.buf.writeUInt32BE(n, this.pos);
    this.buf.write(s, this.pos + 4, n, 'utf8');
    this.pos += 4 + n;
    return this;
  }

  /** bytes: u32 length (0xFFFFFFFF = null) + raw bytes. */
  bytes(b: Uint8Array | null): this {
    if (b === null) return this.u32(NULL_LENGTH);
    this.ensure(4 + b.length);
    this.buf.writeUInt32BE(b.length, this.pos);
    this.buf.set(b, this.pos + 4);
    this.pos += 4 + b.length;
    return this;
  }

  /** Bytes as they are, with no length (records another writer encoded already). */
  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** json: lstr holding JSON text (admin ops only; never on the publish/deliver path). */
  json(v: unknown): this {
    return this.lstr(v === undefined ? 'null' : JSON.stringify(v));
  }

  /** Reserves a u32 to be filled in by patchU32 (frame and record lengths). */
  reserveU32(): number {
    const at = this.pos;
    this.ensure(4);
    this.pos += 4;
    return at;
  }

  patchU32(at: number, v: number): void {
    if (v >>> 0 !== v) throw outOfRange(v, '0..4294967295');
    this.buf.writeUInt32BE(v, at);
  }

  /**
   * Everything written, as a buffer the caller owns; the writer starts over empty. Large outputs
   * hand over the writer's own buffer (the writer takes a fresh one) instead of copying it.
   */
  take(): Buffer {
    const n = this.pos;
    this.pos = 0;
    if (n < TAKE_WITHOUT_COPY_BYTES) return Buffer.from(this.buf.subarray(0, n));
    const out = this.buf.subarray(0, n);
    const spare = this.spare;
    this.spare = null;
    this.buf = spare !== null && spare.length >= this.buf.length ? spare : Buffer.allocUnsafe(this.buf.length);
    return out;
  }

  /**
   * Gives back bytes take() returned, once nothing reads them any more (their socket write has
   * completed), so a later take() reuses the memory. Anything take() copied instead (small outputs)
   * is ignored, as is a buffer too large to keep.
   */
  recycle(taken: Buffer): void {
    const whole = taken.buffer;
    // Handed over, not copied: a buffer this writer allocated itself (its own ArrayBuffer, from 0).
    if (taken.byteOffset !== 0 || whole.byteLength < TAKE_WITHOUT_COPY_BYTES || whole.byteLength > MAX_SPARE_BYTES)
      return;
    if (whole === this.buf.buffer || (this.spare !== null && this.spare.length >= whole.byteLength)) return;
    this.spare = Buffer.from(whole, 0, whole.byteLength);
  }

  /** A private copy of bytes [from, pos). */
  copyFrom(from: number): Buffer {
    return Buffer.from(this.buf.subarray(from, this.pos));
  }
}
