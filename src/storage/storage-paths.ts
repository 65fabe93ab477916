// Storage paths: arrays of validated name segments, so no caller builds a file path and none
// can escape the storage root.
import { validateName, WharfError } from '../common/index.js';

export const LOCK_FILE_NAME = 'LOCK';

export function validatePath(path: unknown, allowEmpty = false): string[] {
  if (!Array.isArray(path)) throw new WharfError('INVALID_ARGUMENT', 'a storage path is an array of names');
  if (path.length === 0 && !allowEmpty)
    throw new WharfError('INVALID_ARGUMENT', 'a storage path needs at least one name');
  for (const segment of path) validateName(segment, 'storage path segment');
  if (path.length === 1 && path[0] === LOCK_FILE_NAME)
    throw new WharfError('INVALID_ARGUMENT', `${LOCK_FILE_NAME} at the storage root is reserved`);
  return path as string[];
}

/** A map key for a path ('/' cannot appear in a name). */
export function pathKey(path: string[]): string {
  return path.join('/');
}

/** Claims path in a storage's open set: a second open of the same log or journal is a CONFLICT. */
export function claimPath(opened: Map<string, unknown>, path: string[]): string {
  validatePath(path);
  const key = pathKey(path);
  if (opened.has(key)) {
    throw new WharfError('CONFLICT', `${key} is already open in this storage; use the open instance or close it first`);
  }
  return key;
}

/** Checks that nothing at or under path is open before it is removed (CONFLICT otherwise); returns its key. */
export function checkRemovable(opened: Map<string, unknown>, path: string[]): string {
  validatePath(path);
  const key = pathKey(path);
  for (const openKey of opened.keys()) {
    if (openKey === key || openKey.startsWith(key + '/'))
      throw new WharfError('CONFLICT', `cannot remove ${key}: ${openKey} is still open; close it first`);
  }
  return key;
}
