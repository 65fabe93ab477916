// Errors cross the wire as the WharfError code and message. A response ERROR carries the failed
// request's correlation id; correlation id 0 means the whole connection failed and will close.
//
// ERROR (0xFF)  code:str message:lstr retryAfterMs:u32 (0xFFFFFFFF = none)
import { WharfError, isErrorCode } from '../../common/index.js';
import type { WireReader } from '../wire-reader.js';
import type { WireWriter } from '../wire-writer.js';

const NO_RETRY = 0xffffffff;

export function encodeError(w: WireWriter, err: WharfError): void {
  const retry = err.retryAfterMs;
  w.str(err.code)
    .lstr(err.message)
    .u32(retry === undefined ? NO_RETRY : Math.max(0, Math.min(NO_RETRY - 1, Math.round(retry))));
}

export function decodeError(r: WireReader): WharfError {
  const code = r.str('code');
  const message = r.lstr('message');
  const retry = r.u32('retryAfterMs');
  r.done();
  // A newer server may send a code this client does not know: keep the text, classify as INTERNAL.
  if (!isErrorCode(code)) return new WharfError('INTERNAL', `${code}: ${message}`);
  return new WharfError(code, message, retry === NO_RETRY ? {} : { retryAfterMs: retry });
}
