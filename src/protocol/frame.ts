// Frames: the unit on the wire. A FrameDecoder turns a TCP byte stream into frames, checking the
// length against maxFrameBytes before buffering anything, and parsing complete frames straight
// out of each received chunk (no copy) when they do not straddle chunks.
//
// frame    = length:u32 op:u8 correlationId:u32 body
// length   = bytes after the length field (5 + body length), big-endian
// body     = op-specific (docs/protocol.md)
import { WharfError } from '../common/index.js';
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

export class FrameDecoder {
  /** Chunks of an incomplete frame; joined only once the whole frame is here (no quadratic copying). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the incomplete frame needs in total (prefix included); 0 while its length is unknown. */
  private neededBytes = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: FrameHandler,
  ) {}

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Feeds received bytes. Throws PROTOCOL_ERROR (bad length) or LIMIT_EXCEEDED (frame too large). */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.neededBytes > 0 && this.pendingBytes < this.neededBytes) return;
      buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      this.neededBytes = 0;
    }
    let pos = 0;
    const n = buf.length;
    while (n - pos >= 4) {
      const length = buf.readUInt32BE(pos);
      if (length < FRAME_HEADER_BYTES) {
        throw new WharfError('PROTOCOL_ERROR', `frame length ${length} is below the 5-byte minimum (op + correlation id); the stream is corrupt`);
      }
      if (length + 4 > this.maxFrameBytes) {
        throw new WharfError('LIMIT_EXCEEDED', `frame of ${length + 4} bytes is over maxFrameBytes (${this.maxFrameBytes}); send smaller batches or raise the server's maxFrameBytes`, {
          details: { limit: 'maxFrameBytes', value: this.maxFrameBytes },
        });
      }
      if (n - pos - 4 < length) {
        this.neededBytes = length + 4;
        break;
      }
      const op = buf[pos + 4];
      const correlationId = buf.readUInt32BE(pos + 5);
      const start = pos + FRAME_PREFIX_BYTES;
      pos += 4 + length;
      this.onFrame(op, correlationId, buf, start, pos);
    }
    if (pos < n) {
      const rest = pos === 0 ? buf : buf.subarray(pos);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
  }
}
