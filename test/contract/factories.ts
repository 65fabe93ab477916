// The two ways to reach a broker that the contract suite runs every case against.
import { Broker } from '../../src/broker/index.js';
import { connect } from '../../src/client/index.js';
import { startNativeServer } from '../../src/server/native/index.js';
import type { Wharf } from '../../src/broker/index.js';

export interface Target {
  wharf: Wharf;
  close(): Promise<void>;
}

export const factories: Array<[string, () => Promise<Target>]> = [
  [
    'embedded',
    async () => {
      const broker = await Broker.open({ inMemory: true });
      return { wharf: broker, close: () => broker.close() };
    },
  ],
  [
    'remote',
    async () => {
      const broker = await Broker.open({ inMemory: true });
      const server = await startNativeServer(broker, { port: 0 });
      const client = await connect(`wharf://127.0.0.1:${server.address().port}`);
      return {
        wharf: client,
        close: async () => {
          await client.close();
          await server.close();
          await broker.close();
        },
      };
    },
  ],
];

export async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
