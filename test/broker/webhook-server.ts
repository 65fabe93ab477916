// A real HTTP endpoint on 127.0.0.1 for webhook tests; its behaviour per request is programmable.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedHook {
  body: string;
  headers: IncomingHttpHeaders;
  at: number;
}

/** Returns the status to answer, or 'hang' to never answer (the client times out). */
export type HookBehaviour = (req: ReceivedHook, attempt: number) => number | 'hang' | Promise<number | 'hang'>;

export class HookServer {
  readonly received: ReceivedHook[] = [];
  readonly ok: ReceivedHook[] = [];
  behaviour: HookBehaviour = () => 200;
  private server: Server | null = null;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const hook = { body: Buffer.concat(chunks).toString('utf8'), headers: req.headers, at: Date.now() };
        this.received.push(hook);
        const status = await this.behaviour(hook, this.received.length);
        if (status === 'hang') return;
        if (status >= 200 && status < 300) this.ok.push(hook);
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
}
