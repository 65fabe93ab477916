// The native wire protocol: frames, primitives and one codec per op family, shared by the server
// and the client. Pure: no sockets here.
export * from './ops.js';
export * from './frame.js';
export * from './wire-writer.js';
export * from './wire-reader.js';
export * from './codec/handshake.js';
export * from './codec/error.js';
export * from './codec/admin.js';
export * from './codec/message.js';
export * from './codec/publish.js';
export * from './codec/flow.js';
export * from './codec/queue.js';
export * from './codec/transaction.js';
export type * from './api-types.js';
