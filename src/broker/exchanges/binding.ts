// A binding's identity and validation: target shape, the type-specific options (checked by the
// exchange type's router) and the filter policy. Identity is canonical so bind is idempotent and
// unbind finds a binding by the same arguments it was made with, as in AMQP.
import { EXCHANGE_LIMITS, WharfError, checkOptionFields, validateName } from '../../common/index.js';
import {
  BINDING_OPTION_FIELDS,
  type BindingInfo,
  type BindingOptions,
  type BindingTarget,
  type FilterPolicy,
} from '../exchange-types.js';

/** Where a routed message is finally written. url bindings resolve to their webhook queue. */
export interface LeafTarget {
  kind: 'queue' | 'topic';
  name: string;
}

export const BINDING_LIMITS = {
  maxBindingsPerExchange: EXCHANGE_LIMITS.maxBindingsPerExchange,
  maxUrlBytes: EXCHANGE_LIMITS.maxWebhookUrlBytes,
} as const;

export function validateTarget(target: unknown): BindingTarget {
  if (target === null || typeof target !== 'object') throw badTarget(target);
  const t = target as Record<string, unknown>;
  const keys = Object.keys(t).sort().join(',');
  if (keys === 'queue') return { queue: validateName(t.queue, 'queue name') };
  if (keys === 'topic') return { topic: validateName(t.topic, 'topic name') };
  if (keys === 'exchange') return { exchange: validateName(t.exchange, 'exchange name') };
  if (keys === 'secret,url') {
    const url = t.url;
    const secret = t.secret;
    if (typeof url !== 'string' || Buffer.byteLength(url) > BINDING_LIMITS.maxUrlBytes || !/^https?:\/\//.test(url)) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `a webhook binding needs an http(s) url of at most ${BINDING_LIMITS.maxUrlBytes} bytes; got ${JSON.stringify(url)}`,
      );
    }
    try {
      new URL(url);
    } catch {
      throw new WharfError('INVALID_ARGUMENT', `webhook url ${JSON.stringify(url)} is not a valid URL`);
    }
    if (typeof secret !== 'string' || secret.length === 0) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        'a webhook binding needs a non-empty secret (the HMAC-SHA256 key of x-wharf-signature)',
      );
    }
    return { url, secret };
  }
  throw badTarget(target);
}

function badTarget(target: unknown): WharfError {
  return new WharfError(
    'INVALID_ARGUMENT',
    `a binding target is { queue }, { topic }, { exchange } or { url, secret }; got ${JSON.stringify(target)}`,
  );
}

/** Options kept on the binding: only the fields the caller gave, in a fixed shape. */
export function normaliseOptions(options: BindingOptions | undefined): BindingOptions {
  const o = options === undefined ? {} : options;
  checkOptionFields(o, BINDING_OPTION_FIELDS, 'binding option', "{ pattern: 'orders.*' }");
  const out: BindingOptions = {};
  if (o.pattern !== undefined) {
    if (typeof o.pattern !== 'string') throw new WharfError('INVALID_ARGUMENT', 'pattern must be a string');
    out.pattern = o.pattern;
  }
  if (o.headers !== undefined) out.headers = o.headers;
  if (o.match !== undefined) out.match = o.match;
  if (o.filter !== undefined) out.filter = o.filter as FilterPolicy;
  return out;
}

/** JSON with object keys sorted, so equal values give equal strings. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

/** Identity of a binding within its exchange. A url target is identified by its url, not its secret. */
export function bindingKey(target: BindingTarget, options: BindingOptions): string {
  const t = 'url' in target ? { url: target.url } : target;
  return stableStringify({ t, o: options });
}

/**
 * Whether deleting `exchange` removes this binding: it is one of the exchange's, or leads to it. The
 * one rule for the drop entry's replay, the registry and binds still under way.
 */
export function isDroppedWith(binding: BindingInfo, exchange: string): boolean {
  return binding.exchange === exchange || ('exchange' in binding.target && binding.target.exchange === exchange);
}
