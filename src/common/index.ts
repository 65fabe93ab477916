// Shared by every layer: the error type, invariants, time, names and limits.
export * from './errors.js';
export * from './assert.js';
export * from './clock.js';
export * from './names.js';
export * from './limits.js';
export * from './byte-text.js';
export * from './int64.js';
export * from './option-fields.js';
export * from './json-text.js';
export * from './churn-map.js';
