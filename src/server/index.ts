// Server layer: `startServer(config)` runs the broker with its listeners; config resolution for `wharf serve`.
export { startServer, type WharfServer } from './server.js';
export { resolveConfig, mergeConfig, readConfigFile, type ConfigSources } from './config.js';
export { SETTINGS, DEFAULT_CONFIG, type ServerConfig, type Setting } from './config-table.js';
export { buildHttpApp, type HttpApp, type HttpAppOptions } from './http/app.js';
export { HTTP_STATUS_BY_CODE, toHttpError } from './http/error-map.js';
export { startNativeServer, DEFAULT_NATIVE_PORT, type NativeServer, type NativeServerOptions } from './native/index.js';
// Leased messages whose answer never reached a client go back uncounted where the broker can (also for the CLI).
export { handBack, type Undelivered } from './undelivered.js';
