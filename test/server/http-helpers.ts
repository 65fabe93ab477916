// Shared set-up for HTTP tests: an in-memory broker behind the real HTTP app.
import { Broker } from '../../src/broker/index.js';
import { buildHttpApp, type HttpApp, type HttpAppOptions } from '../../src/server/http/app.js';

export interface HttpFixture extends HttpApp {
  broker: Broker;
  close(): Promise<void>;
}

export async function httpFixture(options: Partial<HttpAppOptions> = {}): Promise<HttpFixture> {
  const broker = await Broker.open({ inMemory: true });
  const http = await buildHttpApp(broker, { maxBodyBytes: 2 * 1024 * 1024, ...options });
  return {
    ...http,
    broker,
    async close() {
      await http.app.close();
      await broker.close();
    },
  };
}

/** Listens on an ephemeral port of 127.0.0.1 and returns the base URL. */
export async function listen(http: HttpApp): Promise<string> {
  await http.app.listen({ host: '127.0.0.1', port: 0 });
  const a = http.app.server.address();
  if (typeof a !== 'object' || a === null) throw new Error('no address');
  return `http://127.0.0.1:${a.port}`;
}
