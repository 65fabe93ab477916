// An in-memory Broker behind a native server, a frame proxy in front of it and a client connected
// through the proxy, for one test: all closed, last opened first, after each test of the file that
// calls proxiedBroker().
import { afterEach } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { connect, type ConnectOptions, type RemoteWharf } from '../../src/client/index.js';
import { startNativeServer, type NativeServerOptions } from '../../src/server/native/index.js';
import { startFrameProxy, type FrameProxy } from './frame-proxy.js';

export interface ProxiedBroker {
  broker: Broker;
  proxy: FrameProxy;
  client: RemoteWharf;
}

export interface ProxiedBrokerOptions {
  /** Creates what the test needs on the broker before it is served. */
  setup?: (b: Broker) => Promise<void>;
  server?: Omit<NativeServerOptions, 'port'>;
  client?: ConnectOptions;
}

export function proxiedBroker(): (options?: ProxiedBrokerOptions) => Promise<ProxiedBroker> {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });
  return async (options = {}) => {
    const broker = await Broker.open({ inMemory: true });
    closers.push(() => broker.close());
    await options.setup?.(broker);
    const server = await startNativeServer(broker, { ...options.server, port: 0 });
    closers.push(() => server.close());
    const proxy = await startFrameProxy(server.address().port);
    closers.push(() => proxy.close());
    const client = await connect(`wharf://127.0.0.1:${proxy.port}`, options.client);
    closers.push(() => client.close());
    return { broker, proxy, client };
  };
}
