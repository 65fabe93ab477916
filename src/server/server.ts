// Runs Wharf as a server: opens the broker on the configured data dir and starts both listeners
// (native protocol and HTTP). close() is the graceful shutdown: stop accepting, let in-flight
// requests finish (up to shutdownTimeoutMs), then close the broker, which fsyncs and closes its files.
import { pino, type Logger } from 'pino';
import { Broker } from '../broker/index.js';
import { WharfError, toWharfError } from '../common/index.js';
import type { ServerConfig } from './config-table.js';
import { buildHttpApp, type HttpApp } from './http/app.js';
import { startNativeServer, type NativeServer } from './native/index.js';

export interface WharfServer {
  readonly config: ServerConfig;
  readonly broker: Broker;
  /** http://host:port of the HTTP API (the real port when configured as 0). */
  readonly httpUrl: string;
  readonly httpPort: number;
  /** wharf://host:port of the native protocol, for connect(). */
  readonly nativeUrl: string;
  readonly nativePort: number;
  /** Graceful shutdown; safe to call more than once. */
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, options: { logger?: Logger } = {}): Promise<WharfServer> {
  const log = options.logger ?? pino({ level: config.logLevel, base: { service: 'wharf' } });
  const broker = await openBroker(config);
  let ready = false;
  let http: HttpApp;
  let native: NativeServer;
  try {
    native = await listenNative(broker, config);
  } catch (err) {
    await broker.close().catch(() => undefined);
    throw err;
  }
  try {
    http = await buildHttpApp(broker, {
      maxBodyBytes: config.maxBodyBytes,
      maxConnections: config.maxConnections,
      idleTimeoutMs: config.idleTimeoutMs,
      maxHttpReceipts: config.maxHttpReceipts,
      maxSseStreams: config.maxSseStreams,
      isReady: () => ready,
      logger: log,
      listeners: {
        native: () => ({
          connections: native.counters.connectionsOpen,
          bytesIn: native.counters.bytesIn,
          bytesOut: native.counters.bytesOut,
          rejectedConnections: native.counters.connectionsRejected,
        }),
      },
    });
    await listen(http, config.host, config.httpPort);
  } catch (err) {
    await native.close().catch(() => undefined);
    await broker.close().catch(() => undefined);
    throw err;
  }
  const address = http.app.server.address();
  const httpPort = typeof address === 'object' && address !== null ? address.port : config.httpPort;
  const httpUrl = `http://${config.host}:${httpPort}`;
  const nativePort = native.address().port;
  const nativeUrl = `wharf://${config.host}:${nativePort}`;
  ready = true;
  log.info(
    { native: nativeUrl, http: httpUrl, dataDir: config.inMemory ? null : config.dataDir, fsync: config.fsync },
    'wharf listening',
  );

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      log.info('wharf shutting down: no new connections, finishing in-flight requests');
      await Promise.all([
        native.close(),
        closeWithin(http.app.close(), config.shutdownTimeoutMs, () => http.app.server.closeAllConnections()),
      ]);
      await broker.close();
      log.info('wharf stopped: data flushed and closed');
    })();
    return closing;
  };
  return { config, broker, httpUrl, httpPort, nativeUrl, nativePort, close };
}

async function openBroker(config: ServerConfig): Promise<Broker> {
  try {
    return await Broker.open(
      config.inMemory
        ? { inMemory: true, maxMessageBytes: config.maxMessageBytes }
        : {
            dataDir: config.dataDir,
            fsync: config.fsync,
            fsyncIntervalMs: config.fsyncIntervalMs,
            maxMessageBytes: config.maxMessageBytes,
          },
    );
  } catch (err) {
    const e = toWharfError(err);
    throw new WharfError(e.code, `cannot open the data dir ${config.dataDir}: ${e.message}`, { cause: err });
  }
}

async function listenNative(broker: Broker, config: ServerConfig): Promise<NativeServer> {
  try {
    return await startNativeServer(broker, {
      host: config.host,
      port: config.port,
      maxConnections: config.maxConnections,
      idleTimeoutMs: config.idleTimeoutMs,
      maxProtocolVersion: config.maxProtocolVersion,
      closeTimeoutMs: config.shutdownTimeoutMs,
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      throw new WharfError(
        'UNAVAILABLE',
        `native port ${config.port} on ${config.host} is in use; stop the other process or pass --port`,
        { cause: err },
      );
    }
    if (err instanceof WharfError) throw err; // the server's own refusal of a setting
    // An address not on this machine, a privileged port, a host name that does not resolve: the
    // operator's to fix, not a fault of Wharf's (INTERNAL would say so).
    throw new WharfError(
      'UNAVAILABLE',
      `cannot listen on ${config.host}:${config.port} for the native protocol: ${(err as Error).message}; check --host and --port`,
      { cause: err },
    );
  }
}

async function listen(http: HttpApp, host: string, port: number): Promise<void> {
  try {
    await http.app.listen({ host, port });
  } catch (err) {
    await http.app.close().catch(() => undefined);
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') {
      throw new WharfError(
        'UNAVAILABLE',
        `HTTP port ${port} on ${host} is in use; stop the other process or pass --http-port`,
        { cause: err },
      );
    }
    throw new WharfError(
      'UNAVAILABLE',
      `cannot listen on ${host}:${port} for HTTP: ${(err as Error).message}; check --host and --http-port`,
      { cause: err },
    );
  }
}

/** Waits for a graceful close; past the deadline, cuts remaining connections and waits for the rest. */
async function closeWithin(closing: Promise<unknown>, timeoutMs: number, force: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([closing.then(() => 'closed' as const), deadline]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    force();
    await closing;
  }
}
