// Handshake and liveness. The first frame on a connection must be HELLO; the server answers with
// the version both sides will speak and its limits, or ERROR PROTOCOL_ERROR when no version fits.
//
// HELLO     (0x01)  minVersion:u16 maxVersion:u16 clientName:str
// HELLO_OK  (0x81)  version:u16 maxFrameBytes:u32 maxInFlight:u32 idleTimeoutMs:u32 serverName:str
// PING      (0x02)  (empty)
// PONG      (0x82)  (empty)
import { WharfError, toWharfError } from '../../common/index.js';
import { OP, opName } from '../ops.js';
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';
import { decodeError } from './error.js';

export interface Hello {
  minVersion: number;
  maxVersion: number;
  clientName: string;
}

export interface HelloOk {
  version: number;
  maxFrameBytes: number;
  maxInFlight: number;
  /** 0 when the server never closes idle connections. */
  idleTimeoutMs: number;
  serverName: string;
}

export function encodeHello(w: WireWriter, h: Hello): void {
  w.u16(h.minVersion).u16(h.maxVersion).str(h.clientName);
}

export function decodeHello(r: WireReader): Hello {
  const h = { minVersion: r.u16('minVersion'), maxVersion: r.u16('maxVersion'), clientName: r.str('clientName') };
  r.done();
  return h;
}

/** The server's limits are ceilings: one past what a u32 holds (a server set to "unlimited") is sent as the largest. */
const atMostU32 = (v: number): number => Math.min(v, 0xffffffff);

export function encodeHelloOk(w: WireWriter, h: HelloOk): void {
  w.u16(h.version)
    .u32(atMostU32(h.maxFrameBytes))
    .u32(atMostU32(h.maxInFlight))
    .u32(atMostU32(h.idleTimeoutMs))
    .str(h.serverName);
}

export function decodeHelloOk(r: WireReader): HelloOk {
  const h = {
    version: r.u16('version'),
    maxFrameBytes: r.u32('maxFrameBytes'),
    maxInFlight: r.u32('maxInFlight'),
    idleTimeoutMs: r.u32('idleTimeoutMs'),
    serverName: r.str('serverName'),
  };
  r.done();
  return h;
}

/** Picks the highest version both ranges share, or null. */
export function negotiateVersion(
  clientMin: number,
  clientMax: number,
  serverMin: number,
  serverMax: number,
): number | null {
  const v = Math.min(clientMax, serverMax);
  return v >= Math.max(clientMin, serverMin) ? v : null;
}

/**
 * The answer to HELLO of the server `peer` names: its HelloOk, or why the connection cannot be used,
 * an answer that cannot be read included (a wrong service, a buggy peer) — never a throw, so a
 * client that settled its handshake before reading the answer still rejects.
 */
export function decodeHelloAnswer(op: number, r: WireReader, peer: string): HelloOk | WharfError {
  try {
    if (op === OP.HELLO_OK) return decodeHelloOk(r);
    if (op === OP.ERROR) return decodeError(r);
    return new WharfError('PROTOCOL_ERROR', `${peer} answered HELLO with ${opName(op)}`);
  } catch (cause) {
    return new WharfError(
      'PROTOCOL_ERROR',
      `the answer of ${peer} to HELLO cannot be read (${toWharfError(cause).message}); is it a Wharf server of a compatible version?`,
      { cause },
    );
  }
}
