// Listing the rows a relay set aside as failed: bounded, since a broken producer can fail many.
import { WharfError } from '../../common/index.js';

/** Most failed rows one listFailed call returns (page with retryFailed/deleteFailed of what it showed). */
export const MAX_FAILED_ROWS_LISTED = 10_000;

export function failedRowsLimit(limit: number | undefined): number {
  const count = limit ?? 100;
  if (!Number.isSafeInteger(count) || count <= 0 || count > MAX_FAILED_ROWS_LISTED) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `listFailed limit must be an integer from 1 to ${MAX_FAILED_ROWS_LISTED}, got ${limit}`,
    );
  }
  return count;
}
