// Publish: one frame carries a batch of input records for one target (topic, queue or exchange);
// the response comes once every record is durable (publisher confirm), one result per record in
// order. A failure of the batch is one ERROR frame.
//
// PUBLISH     (0x20)  target:str count:u16 input{count}              (input: see message.ts)
// PUBLISH_OK  (0xA0)  count:u16 result{count}
// result      = flags:u8 id:str partition:i32 offset:i64 routed:u32
//               flags bit 0 = duplicate, bit 1 = (with bit 0; version 4) a repeated sequence,
//               bit 2 = (version 5) the target routes (an exchange): `routed` is its count, 0 included;
//               bit 3 / bit 4 = (version 8) a queue's overflow policy dead-lettered / dropped it;
//               partition/offset -1 when not a topic
import type { MessageInput, PublishResult } from '../api-types.js';
import { OVERFLOW_RESULT_VERSION, REPEATED_SEQUENCE_VERSION, ROUTED_FLAG_VERSION } from '../ops.js';
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';
import { decodeMessageInput, encodeMessageInput } from './message.js';

export interface PublishRequest {
  target: string;
  messages: MessageInput[];
}

const FLAG_DUPLICATE = 1;
/** With FLAG_DUPLICATE: a repeat of the message's (producerId, sequence), whose original was stored. */
const FLAG_REPEATED_SEQUENCE = 2;
/** The target routes (an exchange): `routed` is how many targets it reached, 0 when none. */
const FLAG_ROUTED = 4;
/** A queue's overflow policy sent the message to its dead-letter queue instead of storing it. */
const FLAG_DEAD_LETTERED = 8;
/** A queue's overflow policy dropped the message instead of storing it. */
const FLAG_DROPPED = 16;
/** Bits no version defines. */
const FLAGS_RESERVED = 0xe0;

/** baseSequence: an idempotent producer's sequence of messages[0] (the rest follow by one). */
export function encodePublish(
  w: WireWriter,
  target: string,
  messages: readonly MessageInput[],
  producerId?: string,
  baseSequence?: number,
): void {
  w.str(target).u16(messages.length);
  for (let i = 0; i < messages.length; i++)
    encodeMessageInput(w, messages[i], producerId, baseSequence === undefined ? undefined : baseSequence + i);
}

/** A PUBLISH whose `count` inputs encodeMessageInput wrote already, back to back, into `inputs`. */
export function encodePublishEncoded(w: WireWriter, target: string, count: number, inputs: Uint8Array): void {
  w.str(target).u16(count).raw(inputs);
}

export function decodePublish(r: WireReader): PublishRequest {
  const target = r.str('target');
  const count = r.u16('count');
  if (count === 0) throw r.fail('publish of 0 messages');
  const messages = new Array<MessageInput>(count);
  for (let i = 0; i < count; i++) messages[i] = decodeMessageInput(r);
  r.done();
  return { target, messages };
}

/**
 * `version`: the connection's; flags bit 1 only from REPEATED_SEQUENCE_VERSION on, bit 2 only from
 * ROUTED_FLAG_VERSION on, bits 3 and 4 only from OVERFLOW_RESULT_VERSION on (an older peer may
 * refuse bits it does not know).
 */
export function encodePublishOk(w: WireWriter, results: readonly PublishResult[], version: number): void {
  const repeatedFlag = version >= REPEATED_SEQUENCE_VERSION ? FLAG_REPEATED_SEQUENCE : 0;
  const routedFlag = version >= ROUTED_FLAG_VERSION ? FLAG_ROUTED : 0;
  const overflowFlags = version >= OVERFLOW_RESULT_VERSION;
  w.u16(results.length);
  for (const res of results) {
    const duplicateFlags =
      res.duplicate === true ? FLAG_DUPLICATE | (res.repeatedSequence === true ? repeatedFlag : 0) : 0;
    const overflow =
      !overflowFlags || res.overflow === undefined
        ? 0
        : res.overflow === 'dead-lettered'
          ? FLAG_DEAD_LETTERED
          : FLAG_DROPPED;
    w.u8(duplicateFlags | (res.routed !== undefined ? routedFlag : 0) | overflow)
      .str(res.id)
      .i32(res.partition ?? -1)
      .i64(res.offset ?? -1)
      .u32(res.routed ?? 0);
  }
}

export function decodePublishOk(r: WireReader): PublishResult[] {
  const count = r.u16('count');
  const out = new Array<PublishResult>(count);
  for (let i = 0; i < count; i++) {
    const flags = r.u8('flags');
    if (
      (flags & FLAGS_RESERVED) !== 0 ||
      (flags & (FLAG_DEAD_LETTERED | FLAG_DROPPED)) === (FLAG_DEAD_LETTERED | FLAG_DROPPED)
    )
      throw r.fail(`publish result flags 0x${flags.toString(16)} set a reserved bit, or both overflow bits`);
    const res: PublishResult = { id: r.str('id') };
    const partition = r.i32('partition');
    const offset = r.i64('offset');
    const routed = r.u32('routed');
    if (partition >= 0) res.partition = partition;
    if (offset >= 0) res.offset = offset;
    if (flags & FLAG_DUPLICATE) {
      res.duplicate = true;
      if (flags & FLAG_REPEATED_SEQUENCE) res.repeatedSequence = true;
    }
    // Before version 5 a result said nothing of a target that routes to 0 (routed 0 was "not an exchange").
    if ((flags & FLAG_ROUTED) !== 0 || routed > 0) res.routed = routed;
    if (flags & FLAG_DEAD_LETTERED) res.overflow = 'dead-lettered';
    else if (flags & FLAG_DROPPED) res.overflow = 'dropped';
    out[i] = res;
  }
  r.done();
  return out;
}
