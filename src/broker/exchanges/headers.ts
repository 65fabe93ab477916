// Headers exchange: a binding matches on header values, all of them ('all', default) or any one
// ('any'), as RabbitMQ's x-match. Routing scans this exchange's bindings: header sets have no
// natural key to index on, and headers exchanges hold few bindings in practice.
import { WharfError } from '../../common/index.js';
import type { BindingOptions } from '../exchange-types.js';
import type { ExchangeRouter, RoutableMessage, RouterBinding } from './router.js';

export function headersMatch(
  wanted: Record<string, string>,
  match: 'all' | 'any',
  actual: Record<string, string>,
): boolean {
  const entries = Object.entries(wanted);
  const hit = ([k, v]: [string, string]): boolean => Object.hasOwn(actual, k) && actual[k] === v;
  return match === 'any' ? entries.some(hit) : entries.every(hit);
}

export class HeadersRouter implements ExchangeRouter {
  readonly type = 'headers' as const;
  private readonly bindings = new Set<RouterBinding>();

  get size(): number {
    return this.bindings.size;
  }

  validate(options: BindingOptions): void {
    const { headers, match } = options;
    if (
      headers === null ||
      typeof headers !== 'object' ||
      Array.isArray(headers) ||
      Object.keys(headers).length === 0
    ) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        "a headers exchange binding needs { headers: { name: value, ... }, match: 'all' | 'any' }",
      );
    }
    if (Object.values(headers).some((v) => typeof v !== 'string')) {
      throw new WharfError('INVALID_ARGUMENT', 'binding header values must be strings (message headers are strings)');
    }
    if (match !== undefined && match !== 'all' && match !== 'any') {
      throw new WharfError('INVALID_ARGUMENT', `match must be 'all' or 'any', not ${JSON.stringify(match)}`);
    }
  }

  add(binding: RouterBinding): void {
    this.bindings.add(binding);
  }

  remove(binding: RouterBinding): void {
    this.bindings.delete(binding);
  }

  route(message: RoutableMessage, out: Set<RouterBinding>): void {
    for (const b of this.bindings) {
      if (headersMatch(b.info.headers ?? {}, b.info.match ?? 'all', message.headers)) out.add(b);
    }
  }
}
