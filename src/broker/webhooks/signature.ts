// Webhook signatures: HMAC-SHA256 over the exact body bytes with the binding's secret, sent as
// `x-wharf-signature: sha256=<hex>`. Receivers verify with verifyWebhookSignature before parsing.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-wharf-signature';

export function signWebhookBody(body: string | Uint8Array, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Constant-time check of a signature header against the body as received (before any JSON parsing). */
export function verifyWebhookSignature(
  body: string | Uint8Array,
  secret: string,
  header: string | null | undefined,
): boolean {
  if (typeof header !== 'string') return false;
  const expected = Buffer.from(signWebhookBody(body, secret));
  const actual = Buffer.from(header);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
