// An in-memory Broker behind a native server for one test, and the clients the test opened: all
// closed after each test of the file that calls servedBroker().
import { afterEach } from 'vitest';
import { Broker, type QueueStats, type Wharf } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import type { Clock } from '../../src/common/index.js';
import { startNativeServer, type NativeServer } from '../../src/server/native/index.js';

export interface ServedBroker {
  broker: Broker | null;
  server: NativeServer | null;
  /** Opens the broker, lets `setup` create what the test needs, and serves it (or what `wharf` makes of it). */
  start(options?: {
    maxProtocolVersion?: number;
    wharf?: (b: Broker) => Wharf;
    /** The broker's clock (the system's when not given). */
    clock?: Clock;
  }): Promise<{ url: string; port: number }>;
  /** A client closed after the test. */
  client(url: string): Promise<RemoteWharf>;
  /** A queue's [depth, inFlight], read from the broker itself. */
  queueCounts(name: string): Promise<[number, number]>;
}

export function servedBroker(setup: (b: Broker) => Promise<void>): ServedBroker {
  const clients: Wharf[] = [];
  const rig: ServedBroker = {
    broker: null,
    server: null,
    async start(options = {}) {
      rig.broker = await Broker.open({ inMemory: true, clock: options.clock });
      await setup(rig.broker);
      const served = options.wharf ? options.wharf(rig.broker) : rig.broker;
      rig.server = await startNativeServer(served, { port: 0, maxProtocolVersion: options.maxProtocolVersion });
      const port = rig.server.address().port;
      return { url: `wharf://127.0.0.1:${port}`, port };
    },
    async client(url) {
      const c = await connect(url);
      clients.push(c);
      return c;
    },
    async queueCounts(name) {
      const s = (await rig.broker!.stats(name)) as QueueStats;
      return [s.depth, s.inFlight];
    },
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await rig.server?.close();
    await rig.broker?.close();
    rig.server = rig.broker = null;
  });
  return rig;
}

/** The Broker with its receipt methods hidden: a Wharf that settles only through message objects (as a remote client does). */
export function withoutReceipts(b: Broker): Wharf {
  const hidden = new Set(['ackReceipt', 'nackReceipt', 'extendVisibilityReceipt', 'releaseReceipt', 'consumeStored']);
  return new Proxy(b, {
    get(target, key, receiver) {
      if (typeof key === 'string' && hidden.has(key)) return undefined;
      const v: unknown = Reflect.get(target, key, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as unknown as Wharf;
}
