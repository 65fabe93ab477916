// Frames: the unit on the wire. A FrameDecoder turns a TCP byte stream into frames, checking the
// length against maxFrameBytes before buffering anything, and parsing complete frames straight
// out of each received chunk (no copy) when they do not straddle chunks. A frame that does is
// joined from its own bytes alone; the rest of the chunk is still parsed where it lies.
//
// frame    = length:u32 op:u8 correlationId:u32 body
// length   = bytes after the length field (5 + body length), big-endian
// body     = op-specific (docs/protocol.md)
import { WharfError, assert } from '../common/index.js';
import { WireWriter } from './wire-writer.js';

/** op + correlationId. */
export const FRAME_HEADER_BYTES = 5;
/** length + op + correlationId. */
export const FRAME_PREFIX_BYTES = 9;

/** Starts a frame in w; write the body, then endFrame. Returns the frame's start. */
export function beginFrame(w: WireWriter, op: number, correlationId: number): number {
  const start = w.reserveU32();
  w.u8(op);
  w.u32(correlationId);
  return start;
}

/** Fills in the length of the frame started at `start`. */
export function endFrame(w: WireWriter, start: number): void {
  w.patchU32(start, w.pos - start - 4);
}

/** One frame as a private buffer: for tests and rare ops. */
export function encodeFrame(op: number, correlationId: number, body: (w: WireWriter) => void = () => {}): Buffer {
  const w = new WireWriter(256);
  const start = beginFrame(w, op, correlationId);
  body(w);
  endFrame(w, start);
  return w.copyFrom(0);
}

/** Receives a decoded frame; `buf[start, end)` is the body (valid only until the call returns unless copied). */
export type FrameHandler = (op: number, correlationId: number, buf: Buffer, start: number, end: number) => void;

/** A reused join buffer starts at this size and doubles as frames need. */
const MIN_JOIN_BUFFER_BYTES = 256 * 1024;
/** Frames larger than this are joined in a buffer of their own, which is not kept. */
const MAX_JOIN_BUFFER_BYTES = 8 * 1024 * 1024;

export class FrameDecoder {
  /** Chunks of an incomplete frame; joined only once the whole frame is here (no quadratic copying). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the incomplete frame needs in total (prefix included); 0 while its length is unknown. */
  private neededBytes = 0;

  /** Where frames that straddle chunks are joined, when joins reuse one buffer (see the constructor). */
  private joinBuffer: Buffer | null = null;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: FrameHandler,
    /**
     * true: frames that straddle chunks are joined in one buffer, reused for the next such frame,
     * so each handler must copy what it keeps of a frame before it returns (the client's decoders
     * do: payloads are copied, text decoded). A fresh buffer per joined frame, a megabyte for a
     * DELIVER of a thousand 1 KiB messages, was memory outside the heap that set off a full
     * garbage collection every few frames. false (the server): each joined frame gets its own
     * buffer, and published payloads stay views of it until they are stored.
     */
    private readonly reuseJoinBuffer = false,
  ) {}

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Feeds received bytes. Throws PROTOCOL_ERROR (bad length) or LIMIT_EXCEEDED (frame too large). */
  push(chunk: Buffer): void {
    let pos = 0;
    if (this.pendingBytes > 0) {
      pos = this.completePending(chunk);
      if (pos < 0) return;
    }
    const n = chunk.length;
    while (n - pos >= 4) {
      const length = checkedLength(chunk, pos, this.maxFrameBytes);
      if (n - pos - 4 < length) {
        this.neededBytes = length + 4;
        break;
      }
      const end = pos + 4 + length;
      this.dispatch(chunk, pos, end);
      pos = end;
    }
    if (pos < n) this.keep(pos === 0 ? chunk : chunk.subarray(pos));
  }

  /**
   * Feeds the start of chunk to the frame that straddles chunks. Returns how many of chunk's bytes
   * completed it (the frame has been handled), or -1 when chunk was all kept and it is still
   * incomplete. Only the frame's own bytes are joined: the rest of chunk is parsed where it lies,
   * so a chunk is not copied whole because the previous one ended inside a frame.
   */
  private completePending(chunk: Buffer): number {
    if (this.neededBytes === 0) {
      // Its length is not known yet: fewer than 4 bytes of it were here.
      if (this.pendingBytes + chunk.length < 4) {
        this.keep(chunk);
        return -1;
      }
      const prefix = Buffer.concat([...this.pending, chunk.subarray(0, 4 - this.pendingBytes)], 4);
      this.neededBytes = checkedLength(prefix, 0, this.maxFrameBytes) + 4;
    }
    const missing = this.neededBytes - this.pendingBytes;
    if (chunk.length < missing) {
      this.keep(chunk);
      return -1;
    }
    this.pending.push(missing === chunk.length ? chunk : chunk.subarray(0, missing));
    const frame = this.join(this.pending, this.neededBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.neededBytes = 0;
    this.dispatch(frame, 0, frame.length);
    return missing;
  }

  /** The parts of one frame as one buffer: the reused join buffer when it may be, else a new one. */
  private join(parts: Buffer[], totalBytes: number): Buffer {
    if (!this.reuseJoinBuffer || totalBytes > MAX_JOIN_BUFFER_BYTES) return Buffer.concat(parts, totalBytes);
    if (this.joinBuffer === null || this.joinBuffer.length < totalBytes) {
      let size = Math.max(MIN_JOIN_BUFFER_BYTES, this.joinBuffer?.length ?? 0);
      while (size < totalBytes) size *= 2;
      this.joinBuffer = Buffer.allocUnsafe(Math.min(size, MAX_JOIN_BUFFER_BYTES));
    }
    const out = this.joinBuffer;
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    assert(at === totalBytes, 'a joined frame is exactly the bytes of its parts');
    return out.subarray(0, totalBytes);
  }

  private keep(bytes: Buffer): void {
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
  }

  /** Hands on the frame buf[start, end) (its length prefix included). */
  private dispatch(buf: Buffer, start: number, end: number): void {
    this.onFrame(buf[start + 4], buf.readUInt32BE(start + 5), buf, start + FRAME_PREFIX_BYTES, end);
  }
}

/** The length field of the frame at pos, checked against the minimum and maxFrameBytes. */
function checkedLength(buf: Buffer, pos: number, maxFrameBytes: number): number {
  const length = buf.readUInt32BE(pos);
  if (length < FRAME_HEADER_BYTES) {
    throw new WharfError(
      'PROTOCOL_ERROR',
      `frame length ${length} is below the 5-byte minimum (op + correlation id); the stream is corrupt`,
    );
  }
  if (length + 4 > maxFrameBytes) {
    throw new WharfError(
      'LIMIT_EXCEEDED',
      `frame of ${length + 4} bytes is over maxFrameBytes (${maxFrameBytes}); send smaller batches or raise the server's maxFrameBytes`,
      {
        details: { limit: 'maxFrameBytes', value: maxFrameBytes },
      },
    );
  }
  return length;
}
