// The public API types the protocol carries, seen through the broker layer's face.
export type * from '../broker/index.js';
