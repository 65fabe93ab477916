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

/** A copy buffer starts at this size and doubles as frames need. */
const MIN_COPY_BUFFER_BYTES = 256 * 1024;
/** A copy buffer grown past this for one large frame is let go once that frame is handled. */
const MAX_KEPT_COPY_BUFFER_BYTES = 8 * 1024 * 1024;

/** The bytes of the frame that straddles chunks, received so far. */
interface HeldBytes {
  readonly size: number;
  /** Holds bytes (a view of them, or a copy: see the implementations). */
  add(bytes: Buffer): void;
  /** The frame's size is known: room for all of it may be made now. */
  reserve(totalBytes: number): void;
  /** The first four bytes held, followed by the start of `next` when fewer are held. */
  prefix(next: Buffer): Buffer;
  /** The whole frame (totalBytes, all held) as one buffer; holds nothing after. */
  take(totalBytes: number): Buffer;
}

/** Views of the chunks, joined into a buffer of the frame's own (the chunks are never reused). */
class HeldViews implements HeldBytes {
  private parts: Buffer[] = [];
  size = 0;

  add(bytes: Buffer): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  reserve(): void {}

  prefix(next: Buffer): Buffer {
    return Buffer.concat([...this.parts, next.subarray(0, Math.max(0, 4 - this.size))], 4);
  }

  take(totalBytes: number): Buffer {
    const frame = Buffer.concat(this.parts, totalBytes);
    this.parts = [];
    this.size = 0;
    return frame;
  }
}

/**
 * Copies into one buffer, reused for the next frame: chunks may be overwritten once pushed (a
 * socket reading into one buffer), and a frame handed on is valid only until its handler returns.
 */
class HeldCopies implements HeldBytes {
  private buf: Buffer | null = null;
  size = 0;

  private room(totalBytes: number): Buffer {
    const old = this.buf;
    if (old !== null && old.length >= totalBytes) return old;
    let capacity = Math.max(MIN_COPY_BUFFER_BYTES, old?.length ?? 0);
    while (capacity < totalBytes) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    if (old !== null && this.size > 0) old.copy(grown, 0, 0, this.size);
    this.buf = grown;
    return grown;
  }

  add(bytes: Buffer): void {
    const buf = this.room(this.size + bytes.length);
    buf.set(bytes, this.size);
    this.size += bytes.length;
  }

  reserve(totalBytes: number): void {
    this.room(totalBytes);
  }

  prefix(next: Buffer): Buffer {
    const out = Buffer.alloc(4);
    if (this.buf !== null) this.buf.copy(out, 0, 0, Math.min(4, this.size));
    if (this.size < 4) next.copy(out, this.size, 0, 4 - this.size);
    return out;
  }

  take(totalBytes: number): Buffer {
    assert(this.buf !== null && this.size === totalBytes, 'a frame is taken once all of it is held');
    const frame = this.buf.subarray(0, totalBytes);
    if (this.buf.length > MAX_KEPT_COPY_BUFFER_BYTES) this.buf = null;
    this.size = 0;
    return frame;
  }
}

export class FrameDecoder {
  /** The incomplete frame's bytes. */
  private readonly held: HeldBytes;
  /** Bytes the incomplete frame needs in total (prefix included); 0 while its length is unknown. */
  private neededBytes = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: FrameHandler,
    /**
     * true: pushed chunks may be overwritten once push() returns (the client reads its socket
     * into one buffer), so the part of a frame that straddles chunks is copied, into one buffer
     * reused for the next such frame, and a frame is valid only until its handler returns: each
     * handler copies what it keeps (the client's decoders do: payloads are copied, text decoded).
     * No allocation per read or per joined frame: a megabyte per DELIVER of a thousand 1 KiB
     * messages, and 64 KiB per socket read, were memory outside the heap that set off a full
     * garbage collection every few frames. false (the server): chunks are Node's own per read,
     * frames are views of them or of a buffer of their own, and published payloads stay views
     * until they are stored.
     */
    copyChunks = false,
  ) {
    this.held = copyChunks ? new HeldCopies() : new HeldViews();
  }

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.held.size;
  }

  /** Feeds received bytes. Throws PROTOCOL_ERROR (bad length) or LIMIT_EXCEEDED (frame too large). */
  push(chunk: Buffer): void {
    let pos = 0;
    if (this.held.size > 0) {
      pos = this.completeHeld(chunk);
      if (pos < 0) return;
    }
    const n = chunk.length;
    while (n - pos >= 4) {
      const length = checkedLength(chunk, pos, this.maxFrameBytes);
      if (n - pos - 4 < length) {
        this.neededBytes = length + 4;
        this.held.reserve(this.neededBytes);
        break;
      }
      const end = pos + 4 + length;
      this.dispatch(chunk, pos, end);
      pos = end;
    }
    if (pos < n) this.held.add(pos === 0 ? chunk : chunk.subarray(pos));
  }

  /**
   * Feeds the start of chunk to the frame that straddles chunks. Returns how many of chunk's bytes
   * completed it (the frame has been handled), or -1 when chunk was all held and it is still
   * incomplete. Only the frame's own bytes are joined: the rest of chunk is parsed where it lies,
   * so a chunk is not copied whole because the previous one ended inside a frame.
   */
  private completeHeld(chunk: Buffer): number {
    if (this.neededBytes === 0) {
      // Its length is not known yet: fewer than 4 bytes of it were here.
      if (this.held.size + chunk.length < 4) {
        this.held.add(chunk);
        return -1;
      }
      this.neededBytes = checkedLength(this.held.prefix(chunk), 0, this.maxFrameBytes) + 4;
      this.held.reserve(this.neededBytes);
    }
    const missing = this.neededBytes - this.held.size;
    if (chunk.length < missing) {
      this.held.add(chunk);
      return -1;
    }
    this.held.add(missing === chunk.length ? chunk : chunk.subarray(0, missing));
    const frame = this.held.take(this.neededBytes);
    this.neededBytes = 0;
    this.dispatch(frame, 0, frame.length);
    return missing;
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
