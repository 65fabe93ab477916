// Each exchange type's matching, through the one ExchangeRouter interface.
import { describe, expect, it } from 'vitest';
import { createRouter } from '../../src/broker/exchanges/routers.js';
import type { RouterBinding } from '../../src/broker/exchanges/router.js';
import type { BindingOptions } from '../../src/broker/exchange-types.js';

function binding(id: string, options: BindingOptions): RouterBinding {
  return { info: { id, exchange: 'x', target: { queue: id }, createdAt: 0, ...options }, filter: null };
}

function routed(
  type: string,
  bindings: RouterBinding[],
  routingKey: string,
  headers: Record<string, string> = {},
): string[] {
  const router = createRouter(type);
  for (const b of bindings) {
    router.validate(b.info);
    router.add(b);
  }
  const out = new Set<RouterBinding>();
  router.route({ routingKey, headers }, out);
  return [...out].map((b) => b.info.id).sort();
}

describe('exchange types', () => {
  it('direct: routes to bindings whose key equals the routing key', () => {
    const bs = [
      binding('a', { pattern: 'order.created' }),
      binding('b', { pattern: 'order.created' }),
      binding('c', { pattern: 'order.*' }),
    ];
    expect(routed('direct', bs, 'order.created')).toEqual(['a', 'b']);
    expect(routed('direct', bs, 'order.x')).toEqual([]);
    expect(routed('direct', [binding('e', { pattern: '' })], '')).toEqual(['e']);
  });

  it('fanout: routes to every binding whatever the key', () => {
    const bs = [binding('a', {}), binding('b', { pattern: 'ignored' })];
    expect(routed('fanout', bs, 'anything')).toEqual(['a', 'b']);
    expect(routed('fanout', bs, '')).toEqual(['a', 'b']);
  });

  it('topic: routes by AMQP wildcard pattern', () => {
    const bs = [
      binding('star', { pattern: 'order.*' }),
      binding('hash', { pattern: 'order.#' }),
      binding('all', { pattern: '#' }),
      binding('other', { pattern: 'user.*' }),
    ];
    expect(routed('topic', bs, 'order.created')).toEqual(['all', 'hash', 'star']);
    expect(routed('topic', bs, 'order')).toEqual(['all', 'hash']);
    expect(routed('topic', bs, 'order.created.eu')).toEqual(['all', 'hash']);
  });

  it("headers: 'all' needs every header, 'any' needs one", () => {
    const bs = [
      binding('all', { headers: { region: 'eu', tier: 'gold' }, match: 'all' }),
      binding('any', { headers: { region: 'eu', tier: 'gold' }, match: 'any' }),
      binding('default', { headers: { region: 'eu' } }),
    ];
    expect(routed('headers', bs, '', { region: 'eu', tier: 'gold' })).toEqual(['all', 'any', 'default']);
    expect(routed('headers', bs, '', { region: 'eu', tier: 'silver' })).toEqual(['any', 'default']);
    expect(routed('headers', bs, '', { tier: 'gold' })).toEqual(['any']);
    expect(routed('headers', bs, '', {})).toEqual([]);
  });

  it('removing a binding stops routing to it', () => {
    for (const type of ['direct', 'fanout', 'topic']) {
      const router = createRouter(type);
      const a = binding('a', { pattern: 'k' });
      router.add(a);
      router.remove(a);
      const out = new Set<RouterBinding>();
      router.route({ routingKey: 'k', headers: {} }, out);
      expect(out.size).toBe(0);
      expect(router.size).toBe(0);
    }
  });

  it('rejects bindings that do not fit the type, and unknown types', () => {
    expect(() => createRouter('direct').validate({})).toThrowError(/pattern/);
    expect(() => createRouter('topic').validate({})).toThrowError(/pattern/);
    expect(() => createRouter('topic').validate({ pattern: 'a'.repeat(256) })).toThrowError(/255/);
    expect(() => createRouter('headers').validate({ headers: {} })).toThrowError(/headers/);
    expect(() => createRouter('headers').validate({ headers: { a: 'b' }, match: 'some' as 'all' })).toThrowError(
      /match/,
    );
    expect(() => createRouter('x-consistent-hash')).toThrowError(/unknown exchange type/);
  });
});
