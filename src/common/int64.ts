// Signed 64-bit big-endian integers as two 32-bit halves, for values in JavaScript's safe integer
// range: the record batch's offsets and timestamps, and the wire's i64 fields. No BigInt per value.

/** Writes n (a safe integer) at pos. */
export function writeInt64(buf: Buffer, pos: number, n: number): void {
  const hi = Math.floor(n / 0x1_0000_0000);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(n - hi * 0x1_0000_0000, pos + 4);
}

/** The value at pos; outside the safe range it is not exact (Number.isSafeInteger tells). */
export function readInt64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * 0x1_0000_0000 + buf.readUInt32BE(pos + 4);
}
