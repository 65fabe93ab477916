// SubscribeOptions.startOffsets: where a reader without a group starts in each partition it names.
// The remote client sends them to resume a reader after a reconnect where its handler left off,
// which one StartPosition for every partition cannot say.
import { WharfError } from '../../common/index.js';

const EXAMPLE = '{ 0: 120, 1: 98 }';
/** A partition as an object key: a decimal integer without sign or leading zeros. */
const PARTITION_KEY = /^(0|[1-9]\d*)$/;

function invalid(message: string): WharfError {
  return new WharfError('INVALID_ARGUMENT', message);
}

/**
 * The start offset per partition `given` names (null: none given). INVALID_ARGUMENT for a
 * non-object, a group member (it starts at its group's committed offsets), a key that is not a
 * partition of the topic, or an offset that is not an integer >= 0.
 */
export function validateStartOffsets(
  given: unknown,
  group: string | null,
  topic: string,
  partitionCount: number,
): Map<number, number> | null {
  if (given === undefined) return null;
  if (given === null || typeof given !== 'object' || Array.isArray(given))
    throw invalid(
      `startOffsets must be an object of partition -> offset like ${EXAMPLE}, not ${given === null ? 'null' : Array.isArray(given) ? 'an array' : typeof given}`,
    );
  if (group !== null)
    throw invalid(
      `startOffsets is for a reader without a group; a member of group ${JSON.stringify(group)} starts at the group's committed offsets (seek moves them)`,
    );
  const out = new Map<number, number>();
  for (const [key, offset] of Object.entries(given)) {
    const partition = PARTITION_KEY.test(key) ? Number(key) : -1;
    if (partition < 0 || partition >= partitionCount)
      throw invalid(
        `startOffsets names partition ${JSON.stringify(key)}; topic ${JSON.stringify(topic)} has partitions 0 to ${partitionCount - 1}`,
      );
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
      throw invalid(`startOffsets[${key}] is ${JSON.stringify(offset)}; use an offset n >= 0 (a safe integer)`);
    out.set(partition, offset);
  }
  return out;
}
