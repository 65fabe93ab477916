// The routing graph: bindings to queues/topics/exchanges/urls, filters, unroutable counting,
// alternates, exchange-to-exchange hops and cycle protection — without any storage.
import { describe, expect, it } from 'vitest';
import { ExchangeRegistry, type NameKind } from '../../src/broker/exchanges/registry.js';
import type { BindingOptions, BindingTarget, ExchangeType } from '../../src/broker/exchange-types.js';

function setup(names: Record<string, NameKind>) {
  const reg = new ExchangeRegistry((id) => `__wharf.webhook.${id}`);
  const kindOf = (n: string): NameKind =>
    reg.has(n) ? 'exchange' : (names[n] ?? (n.startsWith('__wharf.webhook.') ? 'queue' : null));
  const exchange = (name: string, type: ExchangeType, alternate: string | null = null) =>
    reg.addExchange(name, type, alternate, 0);
  const bind = (ex: string, target: BindingTarget, options: BindingOptions = {}) => {
    const { binding, existing } = reg.prepareBinding(ex, target, options, 0);
    if (!existing) reg.addBinding(binding);
    return binding;
  };
  const route = (ex: string, routingKey: string, headers: Record<string, string> = {}) => {
    const plan = reg.plan(ex, routingKey, headers, kindOf);
    reg.count(plan);
    return plan.targets.map((t) => `${t.kind}:${t.name}`).sort();
  };
  return { reg, exchange, bind, route };
}

describe('exchange routing graph', () => {
  it('routes to queues, topics and webhook queues, each target once', () => {
    const { exchange, bind, route } = setup({ q1: 'queue', audit: 'topic' });
    exchange('events', 'topic');
    bind('events', { queue: 'q1' }, { pattern: 'order.*' });
    bind('events', { queue: 'q1' }, { pattern: '#' });
    bind('events', { topic: 'audit' }, { pattern: '#' });
    const hook = bind('events', { url: 'http://127.0.0.1:9/h', secret: 'k' }, { pattern: '*.created' });
    expect(route('events', 'order.created')).toEqual(['queue:__wharf.webhook.' + hook.id, 'queue:q1', 'topic:audit']);
    expect(route('events', 'user.deleted')).toEqual(['queue:q1', 'topic:audit']);
  });

  it('applies filter policies beside the routing key', () => {
    const { exchange, bind, route } = setup({ eu: 'queue', big: 'queue' });
    exchange('orders', 'direct');
    bind('orders', { queue: 'eu' }, { pattern: 'order.created', filter: { region: { prefix: 'eu-' } } });
    bind('orders', { queue: 'big' }, { pattern: 'order.created', filter: { amount: { numeric: ['>=', 100] } } });
    expect(route('orders', 'order.created', { region: 'eu-west', amount: '5' })).toEqual(['queue:eu']);
    expect(route('orders', 'order.created', { region: 'us', amount: '500' })).toEqual(['queue:big']);
    expect(route('orders', 'order.other', { region: 'eu-west', amount: '500' })).toEqual([]);
  });

  it('counts unroutable messages and hands them to the alternate exchange, queue or topic', () => {
    const { reg, exchange, bind, route } = setup({ lost: 'queue', q: 'queue', lostTopic: 'topic' });
    exchange('ae', 'fanout');
    bind('ae', { queue: 'lost' });
    exchange('main', 'direct', 'ae');
    bind('main', { queue: 'q' }, { pattern: 'k' });
    exchange('toQueue', 'direct', 'lost');
    exchange('toTopic', 'direct', 'lostTopic');
    exchange('none', 'direct');
    expect(route('main', 'k')).toEqual(['queue:q']);
    expect(route('main', 'other')).toEqual(['queue:lost']);
    expect(route('toQueue', 'x')).toEqual(['queue:lost']);
    expect(route('toTopic', 'x')).toEqual(['topic:lostTopic']);
    expect(route('none', 'x')).toEqual([]);
    expect(reg.counters('main')).toEqual({ published: 2, routed: 1, unroutable: 1, alternated: 1 });
    expect(reg.counters('none')).toEqual({ published: 1, routed: 0, unroutable: 1, alternated: 0 });
  });

  it('follows exchange-to-exchange bindings and rejects a binding that closes a cycle', () => {
    const { exchange, bind, route } = setup({ qa: 'queue', qb: 'queue', qc: 'queue' });
    exchange('a', 'fanout');
    exchange('b', 'topic');
    exchange('c', 'headers');
    bind('a', { exchange: 'b' });
    bind('b', { exchange: 'c' }, { pattern: 'x.#' });
    bind('b', { queue: 'qb' }, { pattern: '#' });
    bind('c', { queue: 'qc' }, { headers: { h: '1' } });
    expect(route('a', 'x.y', { h: '1' })).toEqual(['queue:qb', 'queue:qc']);
    expect(route('a', 'y', { h: '1' })).toEqual(['queue:qb']);
    expect(() => bind('c', { exchange: 'a' }, { headers: { h: '1' } })).toThrowError(/cycle/);
    expect(() => bind('a', { exchange: 'a' })).toThrowError(/cycle/);
  });

  it('an exchange reached twice in a diamond routes the same both times, whatever the binding order', () => {
    for (const order of [
      ['c', 'b'],
      ['b', 'c'],
    ]) {
      const { reg, exchange, bind, route } = setup({ q: 'queue', bAlt: 'queue' });
      exchange('c', 'fanout');
      bind('c', { queue: 'q' });
      exchange('b', 'fanout', 'bAlt');
      bind('b', { exchange: 'c' });
      exchange('a', 'fanout');
      for (const next of order) bind('a', { exchange: next });
      expect(route('a', 'k')).toEqual(['queue:q']);
      expect(reg.counters('a')).toEqual({ published: 1, routed: 2, unroutable: 0, alternated: 0 });
      expect(reg.counters('b')).toEqual({ published: 1, routed: 1, unroutable: 0, alternated: 0 });
      expect(reg.counters('c')).toEqual({ published: 1, routed: 1, unroutable: 0, alternated: 0 });
    }
  });

  it('never loops through alternates that point back', () => {
    const { exchange, route } = setup({});
    exchange('x', 'direct', 'y');
    exchange('y', 'direct', 'x');
    expect(route('x', 'k')).toEqual([]);
  });

  it('skips bindings to queues or topics that no longer exist, and then uses the alternate', () => {
    const names: Record<string, NameKind> = { gone: 'queue', spare: 'queue' };
    const { reg, exchange, bind, route } = setup(names);
    exchange('e', 'fanout', 'spare');
    bind('e', { queue: 'gone' });
    expect(route('e', '')).toEqual(['queue:gone']);
    names.gone = null;
    expect(route('e', '')).toEqual(['queue:spare']);
    expect(reg.counters('e').unroutable).toBe(1);
  });

  it('makes bind idempotent and unbind exact; a different secret for the same url conflicts', () => {
    const { reg, exchange, bind } = setup({ q: 'queue' });
    exchange('e', 'topic');
    const a = bind('e', { queue: 'q' }, { pattern: 'a.*' });
    expect(bind('e', { queue: 'q' }, { pattern: 'a.*' }).id).toBe(a.id);
    expect(reg.listBindings('e')).toHaveLength(1);
    expect(reg.findBinding('e', { queue: 'q' }, { pattern: 'a.#' })).toBeNull();
    bind('e', { url: 'http://127.0.0.1:9/h', secret: 's1' }, { pattern: '#' });
    expect(() => bind('e', { url: 'http://127.0.0.1:9/h', secret: 's2' }, { pattern: '#' })).toThrowError(
      /another secret/,
    );
    reg.removeBinding(a.id);
    expect(reg.listBindings('e')).toHaveLength(1);
  });

  it('deleting an exchange removes its bindings and bindings that point to it', () => {
    const { reg, exchange, bind } = setup({ q: 'queue' });
    exchange('src', 'fanout');
    exchange('dst', 'fanout');
    bind('src', { exchange: 'dst' });
    bind('dst', { queue: 'q' });
    const removed = reg.removeExchange('dst');
    expect(removed).toHaveLength(2);
    expect(reg.listBindings()).toEqual([]);
    expect(() => reg.info('dst')).toThrowError(/no exchange/);
  });
});
