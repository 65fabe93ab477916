// Storage layer: segmented append-only logs, record batches, indexes, recovery, journals.
// The broker imports only this file.
export type * from './types.js';
export { openDiskStorage, type DiskStorageOptions } from './disk-storage.js';
export { openMemoryStorage } from './memory-storage.js';
export {
  encodeBatch,
  decodeBatch,
  decodeRecordsInto,
  readBatchHeader,
  BATCH_HEADER_BYTES,
  ATTR_TRANSACTIONAL,
  ATTR_CONTROL,
  MAX_TIMESTAMP_MS,
  type BatchHeader,
  type DecodedBatch,
  type EncodeBatchInput,
} from './record-batch.js';
export { resolveLogOptions, resolveJournalOptions } from './validate.js';
export { DiskLog } from './partition-log.js';
export { MemoryLog } from './memory-log.js';
export { DiskJournal } from './journal.js';
export { MemoryJournal } from './memory-journal.js';
