// The native-protocol server's public face (the http/cli owner re-exports it from src/server).
export { startNativeServer, DEFAULT_NATIVE_PORT, type NativeServer, type NativeServerOptions } from './server.js';
export type { ServerCounters, ServerLimits } from './limits.js';
