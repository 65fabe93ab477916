// Storage layer: segmented append-only logs, record batches, indexes, recovery, journals.
export type * from './types.js';
