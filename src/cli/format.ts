// How the CLI prints messages: one JSON object per line (NDJSON), byte payloads as base64.
import type { Message } from '../broker/index.js';

/** Leaves out settle methods and a topic message's grant (a handle for tx.commitOffset, not data). */
export function messageLine(m: Message & Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v === 'function' || k === 'payload' || k === 'grant') continue;
    out[k] = v;
  }
  if (m.payload instanceof Uint8Array) out.payloadBase64 = Buffer.from(m.payload).toString('base64');
  else out.payload = m.payload;
  return JSON.stringify(out);
}

/** A fixed-width text table, for `list` and `stats`. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null ? '' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]): string =>
    vals
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}
