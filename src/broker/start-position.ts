// A topic start position written as text (`earliest`, `latest`, an offset, `ts:<ms since epoch>`):
// the same grammar for the CLI's --from and the HTTP event stream's from=, each refusing with its
// own kind of error.
import type { StartPosition } from './types.js';

/** The position `text` names, or null when it names none. */
export function parseStartPosition(text: string): StartPosition | null {
  if (text === 'earliest' || text === 'latest') return text;
  if (/^\d+$/.test(text) && Number.isSafeInteger(Number(text))) return { offset: Number(text) };
  const ts = /^ts:(\d+)$/.exec(text);
  if (ts !== null && Number.isSafeInteger(Number(ts[1]))) return { timestamp: Number(ts[1]) };
  return null;
}
