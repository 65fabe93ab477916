// Admin ops: rare, small and shaped by options that grow, so their options and results travel as
// JSON text. None of them is on the publish/deliver path.
//
// CREATE_TOPIC   (0x10)  name:str options:json        -> JSON_RESULT TopicInfo
// DELETE_TOPIC   (0x11)  name:str                     -> OK
// LIST_TOPICS    (0x12)  (empty)                      -> JSON_RESULT TopicInfo[]
// DESCRIBE_TOPIC (0x13)  name:str                     -> JSON_RESULT TopicInfo
// CREATE_QUEUE   (0x14)  name:str options:json        -> JSON_RESULT QueueInfo
// DELETE_QUEUE   (0x15)  name:str                     -> OK
// PURGE_QUEUE    (0x16)  name:str                     -> JSON_RESULT number (messages removed)
// LIST_QUEUES    (0x17)  (empty)                      -> JSON_RESULT QueueInfo[]
// DESCRIBE_QUEUE (0x18)  name:str                     -> JSON_RESULT QueueInfo
// STATS          (0x19)  name:str                     -> JSON_RESULT TopicStats | QueueStats
// REDRIVE        (0x1A)  name:str options:json        -> JSON_RESULT number (messages moved)
// CREATE_EXCHANGE   (0x60)  name:str options:json               -> JSON_RESULT ExchangeInfo
// DELETE_EXCHANGE   (0x61)  name:str                            -> OK
// LIST_EXCHANGES    (0x62)  (empty)                             -> JSON_RESULT ExchangeInfo[]
// DESCRIBE_EXCHANGE (0x63)  name:str                            -> JSON_RESULT ExchangeInfo
// BIND              (0x64)  exchange:str {target, options}:json -> JSON_RESULT BindingInfo
// UNBIND            (0x65)  exchange:str {target, options}:json -> JSON_RESULT null
// LIST_BINDINGS     (0x66)  exchange:str ('' = all)             -> JSON_RESULT BindingInfo[]
// OK             (0x80)  (empty)
// JSON_RESULT    (0x90)  result:json
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';

export interface NameRequest {
  name: string;
}

export interface NameOptionsRequest {
  name: string;
  options: unknown;
}

export function encodeName(w: WireWriter, req: NameRequest): void {
  w.str(req.name);
}

export function decodeName(r: WireReader): NameRequest {
  const req = { name: r.str('name') };
  r.done();
  return req;
}

export function encodeNameOptions(w: WireWriter, req: NameOptionsRequest): void {
  w.str(req.name).json(req.options ?? {});
}

export function decodeNameOptions(r: WireReader): NameOptionsRequest {
  const req = { name: r.str('name'), options: r.json('options') };
  r.done();
  return req;
}

export function encodeJsonResult(w: WireWriter, result: unknown): void {
  w.json(result);
}

export function decodeJsonResult(r: WireReader): unknown {
  const v = r.json('result');
  r.done();
  return v;
}

export function decodeEmpty(r: WireReader): void {
  r.done();
}
