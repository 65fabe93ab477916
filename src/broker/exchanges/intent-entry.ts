// The bytes of one intent-journal entry: the intents begun in one round and the ids of intents
// finished since the previous entry. It is written and fsynced on the path of every multi-target
// publish, so a message routed to several targets is stored once (write ops refer to it by index)
// and byte payloads are stored raw after the JSON head instead of as base64.
//   entry = 0x01 u32be(headBytes) head blob*
//   head  = JSON { begun: [{ id, ops }], done: [id], messages: [MessageInput], bin: [[message, blob, json?]] }
//           write ops carry `m: [message index]` instead of `messages`; a message whose payload is
//           a Uint8Array is stored without it and listed in `bin` with the index of its blob, and
//           a third element 1 when the bytes are a JSON payload's text (JsonText; absent = bytes)
//   blob  = u32be(length) bytes
// Entries of the earlier format (one intent per entry, JSON with base64 bytes: { t: 'begin', id,
// ops } and { t: 'done', id }) are still read, so a journal left by an older broker is recovered.
import { JsonText, WharfError } from '../../common/index.js';
import type { MessageInput } from '../types.js';
import type { Intent, IntentOp } from './intent-types.js';

export interface IntentEntry {
  begun: Intent[];
  done: string[];
}

const FORMAT_ROUND = 0x01;
const LEGACY_JSON = 0x7b; // '{'

type StoredOp =
  Exclude<IntentOp, { op: 'write' }> | { op: 'write'; kind: 'queue' | 'topic'; name: string; m: number[] };
interface Head {
  begun: Array<{ id: string; ops: StoredOp[] }>;
  done: string[];
  messages: MessageInput[];
  bin: Array<[number, number] | [number, number, 1]>;
}

export function encodeIntentEntry(entry: IntentEntry): Uint8Array {
  const messages: MessageInput[] = [];
  const indexOf = new Map<MessageInput, number>();
  const bin: Head['bin'] = [];
  const blobs: Uint8Array[] = [];
  const store = (message: MessageInput): number => {
    let n = indexOf.get(message);
    if (n !== undefined) return n;
    n = messages.length;
    indexOf.set(message, n);
    if (message.payload instanceof Uint8Array) {
      const { payload, ...rest } = message;
      bin.push(payload instanceof JsonText ? [n, blobs.length, 1] : [n, blobs.length]);
      blobs.push(payload as Uint8Array);
      messages.push(rest);
    } else {
      messages.push(message);
    }
    return n;
  };
  const begun = entry.begun.map((intent) => ({
    id: intent.id,
    ops: intent.ops.map((op): StoredOp =>
      op.op === 'write' ? { op: 'write', kind: op.kind, name: op.name, m: op.messages.map(store) } : op,
    ),
  }));
  const head = Buffer.from(JSON.stringify({ begun, done: entry.done, messages, bin } satisfies Head), 'utf8');
  const out = Buffer.allocUnsafe(5 + head.length + blobs.reduce((n, b) => n + 4 + b.length, 0));
  out[0] = FORMAT_ROUND;
  out.writeUInt32BE(head.length, 1);
  let at = 5 + head.copy(out, 5);
  for (const b of blobs) {
    out.writeUInt32BE(b.length, at);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  return out;
}

export function decodeIntentEntry(bytes: Uint8Array): IntentEntry {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (buf[0] === LEGACY_JSON) return decodeLegacy(buf);
  if (buf[0] !== FORMAT_ROUND || buf.length < 5)
    throw new WharfError(
      'CORRUPT_DATA',
      `intent journal entry of unknown format ${buf[0]}; the journal was written by a newer broker or is damaged`,
    );
  const headBytes = buf.readUInt32BE(1);
  const head = JSON.parse(buf.toString('utf8', 5, 5 + headBytes)) as Head;
  const blobs: Uint8Array[] = [];
  for (let at = 5 + headBytes; at < buf.length;) {
    const n = buf.readUInt32BE(at);
    blobs.push(new Uint8Array(buf.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  for (const [message, blob, json] of head.bin)
    head.messages[message].payload = json === 1 ? JsonText.over(blobs[blob]) : blobs[blob];
  const begun = head.begun.map((i) => ({
    id: i.id,
    ops: i.ops.map((op): IntentOp =>
      op.op === 'write'
        ? { op: 'write', kind: op.kind, name: op.name, messages: op.m.map((n) => head.messages[n]) }
        : op,
    ),
  }));
  return { begun, done: head.done };
}

function decodeLegacy(buf: Buffer): IntentEntry {
  const e = JSON.parse(buf.toString('utf8'), (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && typeof (v as { __wharfBytes?: unknown }).__wharfBytes === 'string') {
      return new Uint8Array(Buffer.from((v as { __wharfBytes: string }).__wharfBytes, 'base64'));
    }
    return v;
  }) as { t: 'begin'; id: string; ops: IntentOp[] } | { t: 'done'; id: string };
  return e.t === 'begin' ? { begun: [{ id: e.id, ops: e.ops }], done: [] } : { begun: [], done: [e.id] };
}
