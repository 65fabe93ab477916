// A writer reuses the memory of a large output once it is given back (recycle), and never the
// memory of anything it copied or did not hand out.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { WireWriter } from '../../src/protocol/wire-writer.js';

function fill(w: WireWriter, bytes: number): void {
  w.bytes(Buffer.alloc(bytes - 4, 7));
}

describe('WireWriter.recycle', () => {
  it('reuses a recycled large output for the next large take', () => {
    const w = new WireWriter(64 * 1024);
    fill(w, 40_000);
    const first = w.take();
    expect(first.length).toBe(40_000);
    fill(w, 50_000);
    const second = w.take();
    expect(second.buffer === first.buffer).toBe(false);
    w.recycle(first);
    // The next take hands out what was written since, and writes on in the recycled memory.
    fill(w, 30_000);
    const third = w.take();
    expect(third.buffer === first.buffer).toBe(false);
    expect(w.buf.buffer === first.buffer).toBe(true);
    fill(w, 20_000);
    const fourth = w.take();
    expect(fourth.buffer === first.buffer).toBe(true);
    expect(fourth.length).toBe(20_000);
    expect(fourth.subarray(4).every((b) => b === 7)).toBe(true);
  });

  it('hands out fresh memory when nothing was recycled', () => {
    const w = new WireWriter(64 * 1024);
    fill(w, 40_000);
    const first = w.take();
    fill(w, 40_000);
    expect(w.take().buffer === first.buffer).toBe(false);
  });

  it('ignores small outputs (copied), views that do not start their memory, and its own current buffer', () => {
    const w = new WireWriter(64 * 1024);
    fill(w, 100);
    const small = w.take();
    w.recycle(small);
    w.recycle(Buffer.alloc(100_000).subarray(10));
    w.recycle(w.buf);
    const current = w.buf.buffer;
    fill(w, 40_000);
    w.take();
    // No spare was kept: the writer goes on in fresh memory, none of the buffers seen above.
    for (const seen of [small.buffer, current]) expect(w.buf.buffer === seen).toBe(false);
  });

  it('does not keep a buffer larger than its limit', () => {
    const w = new WireWriter(64 * 1024);
    fill(w, 9 * 1024 * 1024);
    const huge = w.take();
    w.recycle(huge);
    fill(w, 40_000);
    w.take();
    expect(w.buf.buffer === huge.buffer).toBe(false);
  });

  it('never changes bytes a socket has yet to send: recycled only from the write callback, under backpressure', async () => {
    const frames = 40;
    const frameBytes = 256 * 1024;
    const received: Buffer[] = [];
    const server = net.createServer((sock) => {
      sock.pause(); // the peer reads late: writes queue up in the sender
      setTimeout(() => sock.resume(), 200);
      sock.on('data', (c: Buffer) => received.push(c));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const w = new WireWriter(64 * 1024);
    const memories = new Set<ArrayBufferLike>();
    for (let i = 0; i < frames; i++) {
      w.bytes(Buffer.alloc(frameBytes - 4, i)); // frame i is 4 length bytes, then all i
      const out = w.take();
      memories.add(out.buffer);
      sock.write(out, () => w.recycle(out));
      // Let completed writes call back between frames, so memory is reused while later ones are queued.
      await new Promise((r) => setImmediate(r));
    }
    expect(memories.size).toBeLessThan(frames); // memory was reused
    await new Promise<void>((r) => sock.end(r));
    while (Buffer.concat(received).length < frames * frameBytes) await new Promise((r) => setTimeout(r, 10));
    server.close();
    const all = Buffer.concat(received);
    for (let i = 0; i < frames; i++) {
      const frame = all.subarray(i * frameBytes, (i + 1) * frameBytes);
      expect(frame.readUInt32BE(0)).toBe(frameBytes - 4);
      expect(
        frame.subarray(4).every((b) => b === i),
        `frame ${i}`,
      ).toBe(true);
    }
  });
});
