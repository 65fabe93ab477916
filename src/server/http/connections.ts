// Open HTTP connections: counted for /metrics (connections, bytes in/out) and capped at maxConnections.
// A connection over the cap is still accepted so it can be told why: its first request gets
// 503 UNAVAILABLE with a WharfError body and the socket is closed; connections under the cap are unaffected.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ListenerStats {
  connections: number;
  bytesIn: number;
  bytesOut: number;
  rejectedConnections: number;
}

export class ConnectionTracker {
  private readonly open = new Set<Socket>();
  private readonly overLimit = new WeakSet<Socket>();
  private closedBytesIn = 0;
  private closedBytesOut = 0;
  private rejected = 0;

  constructor(private readonly maxConnections: number) {}

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => {
      if (this.open.size >= this.maxConnections) {
        this.overLimit.add(socket);
        this.rejected++;
      }
      this.open.add(socket);
      socket.once('close', () => {
        this.open.delete(socket);
        this.closedBytesIn += socket.bytesRead;
        this.closedBytesOut += socket.bytesWritten;
      });
    });
  }

  isOverLimit(socket: Socket): boolean {
    return this.overLimit.has(socket);
  }

  get limit(): number {
    return this.maxConnections;
  }

  stats(): ListenerStats {
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    for (const s of this.open) {
      bytesIn += s.bytesRead;
      bytesOut += s.bytesWritten;
    }
    return { connections: this.open.size, bytesIn, bytesOut, rejectedConnections: this.rejected };
  }
}
