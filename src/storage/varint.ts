// Zigzag varints as Kafka's record format uses them (the protobuf encoding): 'varint' for int32
// values and 'varlong' for int64 values. Pure functions over a Buffer and a byte position.
//
// varint uses 32-bit bitwise arithmetic. varlong uses float arithmetic, because JS bitwise
// operators truncate to 32 bits: it is exact for |n| < 2^52, which is why record timestamps are
// limited to [0, 2^52) (a timestamp delta then zigzags to below 2^53).
import { WharfError } from '../common/index.js';

/** Largest |value| a varlong round-trips exactly as a JS number. */
export const MAX_VARLONG_MAGNITUDE = 2 ** 52 - 1;

export function sizeOfVarint(n: number): number {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  let size = 1;
  while (v >= 0x80) {
    v >>>= 7;
    size++;
  }
  return size;
}

/** Writes n (an int32) at pos; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

function zigzag64(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function sizeOfVarlong(n: number): number {
  let v = zigzag64(n);
  let size = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    size++;
  }
  return size;
}

/** Writes n (|n| <= MAX_VARLONG_MAGNITUDE) at pos; returns the position after it. */
export function writeVarlong(buf: Uint8Array, pos: number, n: number): number {
  if (n >= -0x40000000 && n < 0x40000000) return writeVarint(buf, pos, n); // same bytes, faster path
  let v = zigzag64(n);
  while (v >= 0x80) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/**
 * A read position over a byte range that ends at `end`. Reading past `end` or an over-long
 * varint throws CORRUPT_DATA: the bytes come from disk or the wire and are never trusted.
 */
export class ByteReader {
  constructor(
    public buf: Buffer,
    public pos: number,
    public end: number,
  ) {}

  private overrun(what: string): never {
    throw new WharfError('CORRUPT_DATA', `malformed record: ${what} runs past its batch at byte ${this.pos}`);
  }

  readVarint(): number {
    const buf = this.buf;
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) this.overrun('a varint');
      const b = buf[this.pos++];
      if (shift === 28) {
        if (b > 0x0f) this.overrun('an over-long varint');
        result |= b << 28;
        break;
      }
      result |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    return (result >>> 1) ^ -(result & 1);
  }

  readVarlong(): number {
    const buf = this.buf;
    let result = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (this.pos >= this.end) this.overrun('a varlong');
      if (i >= 10) this.overrun('an over-long varlong');
      const b = buf[this.pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
    }
    if (result > Number.MAX_SAFE_INTEGER) this.overrun('a varlong beyond 2^53');
    return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
  }

  readInt8(): number {
    if (this.pos >= this.end) this.overrun('an int8');
    return this.buf.readInt8(this.pos++);
  }

  /** A plain Uint8Array view of the next n bytes (no copy, cheaper to create than a Buffer). */
  readView(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) this.overrun(`a ${n}-byte field`);
    const view = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.pos, n);
    this.pos += n;
    return view;
  }

  readUtf8(n: number): string {
    if (n < 0 || this.pos + n > this.end) this.overrun(`a ${n}-byte string`);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}
