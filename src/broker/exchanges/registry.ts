// The in-memory routing graph: exchanges, their bindings (indexed by each type's router), and the
// walk that turns one published message into the set of queues/topics it must be written to —
// following exchange-to-exchange bindings and alternates, each exchange at most once per message.
// No I/O here: the manager persists changes and performs the writes.
import { WharfError } from '../../common/index.js';
import type { BindingInfo, BindingOptions, BindingTarget, ExchangeInfo, ExchangeType } from '../exchange-types.js';
import { BINDING_LIMITS, bindingKey, type LeafTarget } from './binding.js';
import { compileFilterPolicy } from './filter-policy.js';
import type { ExchangeRouter, RouterBinding } from './router.js';
import { createRouter } from './routers.js';

export type NameKind = 'topic' | 'queue' | 'exchange' | null;

export interface ExchangeCounters {
  published: number;
  routed: number;
  unroutable: number;
  alternated: number;
}

interface ExchangeState {
  name: string;
  type: ExchangeType;
  alternate: string | null;
  createdAt: number;
  router: ExchangeRouter;
  bindings: Map<string, RouterBinding>;
  byKey: Map<string, RouterBinding>;
  counters: ExchangeCounters;
}

/** The outcome of routing one message: where to write it, and the counters to add once written. */
export interface RoutePlan {
  targets: LeafTarget[];
  counts: Map<string, ExchangeCounters>;
}

export class ExchangeRegistry {
  private readonly exchanges = new Map<string, ExchangeState>();
  private readonly bindingsById = new Map<string, RouterBinding>();
  private nextBindingNo = 1;

  /** webhookQueueFor: the queue that receives a url binding's messages. */
  constructor(private readonly webhookQueueFor: (bindingId: string) => string) {}

  addExchange(name: string, type: ExchangeType, alternate: string | null, createdAt: number): void {
    const router = createRouter(type);
    this.exchanges.set(name, {
      name,
      type,
      alternate,
      createdAt,
      router,
      bindings: new Map(),
      byKey: new Map(),
      counters: zero(),
    });
  }

  /** Binding ids continue after n (the highest ever used, from the journal). */
  reserveSeq(n: number): void {
    if (n >= this.nextBindingNo) this.nextBindingNo = n + 1;
  }

  has(name: string): boolean {
    return this.exchanges.has(name);
  }

  info(name: string): ExchangeInfo {
    const ex = this.require(name);
    return {
      name,
      kind: 'exchange',
      type: ex.type,
      alternate: ex.alternate,
      bindings: ex.bindings.size,
      createdAt: ex.createdAt,
    };
  }

  names(): string[] {
    return [...this.exchanges.keys()].sort();
  }

  counters(name: string): ExchangeCounters {
    return { ...this.require(name).counters };
  }

  /** Removes the exchange, its bindings and bindings of other exchanges to it; returns them all. */
  removeExchange(name: string): BindingInfo[] {
    const ex = this.require(name);
    const removed: BindingInfo[] = [];
    for (const b of [...ex.bindings.values()]) removed.push(this.removeBinding(b.info.id));
    for (const other of this.exchanges.values()) {
      for (const b of [...other.bindings.values()]) {
        const t = b.info.target;
        if ('exchange' in t && t.exchange === name) removed.push(this.removeBinding(b.info.id));
      }
    }
    this.exchanges.delete(name);
    return removed;
  }

  /** Validates and returns the binding that bind() would add, or the existing identical one. */
  prepareBinding(
    exchange: string,
    target: BindingTarget,
    options: BindingOptions,
    createdAt: number,
    bindsUnderWay: Iterable<BindingInfo> = [],
  ): { binding: BindingInfo; existing: boolean } {
    const ex = this.require(exchange);
    ex.router.validate(options);
    if (options.filter !== undefined) compileFilterPolicy(options.filter);
    const key = bindingKey(target, options);
    const same = ex.byKey.get(key);
    if (same !== undefined) {
      const t = same.info.target;
      if ('url' in t && 'url' in target && t.secret !== target.secret) {
        throw new WharfError(
          'CONFLICT',
          `a binding to ${t.url} with these options already exists with another secret; unbind it first`,
        );
      }
      return { binding: same.info, existing: true };
    }
    if (ex.bindings.size >= BINDING_LIMITS.maxBindingsPerExchange) {
      throw new WharfError(
        'LIMIT_EXCEEDED',
        `exchange ${exchange} already has ${BINDING_LIMITS.maxBindingsPerExchange} bindings (maxBindingsPerExchange)`,
      );
    }
    // Binds under way count as edges too: two concurrent binds x -> y and y -> x must not both pass.
    if ('exchange' in target && this.reaches(target.exchange, exchange, bindsUnderWay)) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `binding ${exchange} -> ${target.exchange} would create a cycle of exchanges; remove the reverse binding first`,
      );
    }
    const id = `${exchange}.${this.nextBindingNo++}`;
    return { binding: { id, exchange, target, ...options, createdAt }, existing: false };
  }

  /** Adds a binding (from prepareBinding, or replayed from the journal on open). */
  addBinding(info: BindingInfo): void {
    const ex = this.require(info.exchange);
    const { id: _id, exchange: _e, target, createdAt: _c, ...opts } = info;
    const binding: RouterBinding = {
      info,
      filter: info.filter === undefined ? null : compileFilterPolicy(info.filter),
    };
    ex.router.add(binding);
    ex.bindings.set(info.id, binding);
    ex.byKey.set(bindingKey(target, opts), binding);
    this.bindingsById.set(info.id, binding);
    const n = Number(info.id.slice(info.id.lastIndexOf('.') + 1));
    if (Number.isInteger(n) && n >= this.nextBindingNo) this.nextBindingNo = n + 1;
  }

  findBinding(exchange: string, target: BindingTarget, options: BindingOptions): BindingInfo | null {
    return this.require(exchange).byKey.get(bindingKey(target, options))?.info ?? null;
  }

  removeBinding(id: string): BindingInfo {
    const binding = this.bindingsById.get(id);
    if (binding === undefined) throw new WharfError('NOT_FOUND', `no binding ${id}`);
    const ex = this.require(binding.info.exchange);
    const { id: _id, exchange: _e, target, createdAt: _c, ...opts } = binding.info;
    ex.router.remove(binding);
    ex.bindings.delete(id);
    ex.byKey.delete(bindingKey(target, opts));
    this.bindingsById.delete(id);
    return binding.info;
  }

  listBindings(exchange?: string): BindingInfo[] {
    // Sorted by exchange name, then creation order, so listings are stable across restarts.
    const sources = exchange === undefined ? this.names().map((n) => this.require(n)) : [this.require(exchange)];
    const seq = (id: string): number => Number(id.slice(id.lastIndexOf('.') + 1));
    return sources.flatMap((ex) => [...ex.bindings.values()].map((b) => b.info).sort((a, b) => seq(a.id) - seq(b.id)));
  }

  /**
   * Routes one message from `exchange`. kindOf says what a name is now: a binding to a deleted
   * queue or topic is skipped (as if it did not match). Each exchange is entered at most once per
   * message, so alternates pointing back cannot loop; each target receives the message once. An
   * exchange reached again (a diamond: a -> c, a -> b -> c) answers with the outcome it had the first
   * time, so whether b delivered — and so whether b's alternate gets the message — does not depend on
   * which binding the walk followed first. Only an exchange still being entered (a loop back through
   * an alternate) delivers nothing.
   */
  plan(
    exchange: string,
    routingKey: string,
    headers: Record<string, string>,
    kindOf: (name: string) => NameKind,
  ): RoutePlan {
    const targets = new Map<string, LeafTarget>();
    const counts = new Map<string, ExchangeCounters>();
    // An exchange's outcome in this walk: false while it is still being entered, then its result.
    const delivered = new Map<string, boolean>();
    const addLeaf = (kind: 'queue' | 'topic', name: string): boolean => {
      if (kindOf(name) !== kind) return false;
      targets.set(`${kind}:${name}`, { kind, name });
      return true;
    };
    const enter = (name: string): boolean => {
      const known = delivered.get(name);
      if (known !== undefined) return known;
      const ex = this.exchanges.get(name);
      if (ex === undefined) return false;
      delivered.set(name, false);
      const outcome = route(ex);
      delivered.set(name, outcome);
      return outcome;
    };
    const route = (ex: ExchangeState): boolean => {
      const name = ex.name;
      const c = zero();
      counts.set(name, c);
      c.published++;
      const matched = new Set<RouterBinding>();
      ex.router.route({ routingKey, headers }, matched);
      for (const b of matched) {
        if (b.filter !== null && !b.filter(headers)) continue;
        const t = b.info.target;
        let reached: boolean;
        if ('queue' in t) reached = addLeaf('queue', t.queue);
        else if ('topic' in t) reached = addLeaf('topic', t.topic);
        else if ('exchange' in t) reached = enter(t.exchange);
        else reached = addLeaf('queue', this.webhookQueueFor(b.info.id));
        if (reached) c.routed++;
      }
      if (c.routed > 0) return true;
      c.unroutable++;
      if (ex.alternate === null) return false;
      const kind = kindOf(ex.alternate);
      const ok =
        kind === 'exchange'
          ? enter(ex.alternate)
          : kind === 'queue' || kind === 'topic'
            ? addLeaf(kind, ex.alternate)
            : false;
      if (ok) c.alternated++;
      return ok;
    };
    this.require(exchange);
    enter(exchange);
    return { targets: [...targets.values()], counts };
  }

  /** Adds a plan's counters once its writes succeeded. */
  count(plan: RoutePlan): void {
    for (const [name, c] of plan.counts) {
      const ex = this.exchanges.get(name);
      if (ex === undefined) continue;
      ex.counters.published += c.published;
      ex.counters.routed += c.routed;
      ex.counters.unroutable += c.unroutable;
      ex.counters.alternated += c.alternated;
    }
  }

  /** Whether exchange `to` is reachable from `from` (or is it) through bindings, those in the registry and extraEdges. */
  private reaches(from: string, to: string, extraEdges: Iterable<BindingInfo>): boolean {
    const extra = new Map<string, string[]>();
    for (const b of extraEdges) {
      if (!('exchange' in b.target)) continue;
      const targets = extra.get(b.exchange);
      if (targets === undefined) extra.set(b.exchange, [b.target.exchange]);
      else targets.push(b.target.exchange);
    }
    const stack = [from];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (name === to) return true;
      if (seen.has(name)) continue;
      seen.add(name);
      for (const t of extra.get(name) ?? []) stack.push(t);
      const ex = this.exchanges.get(name);
      if (ex === undefined) continue;
      for (const b of ex.bindings.values()) if ('exchange' in b.info.target) stack.push(b.info.target.exchange);
    }
    return false;
  }

  private require(name: string): ExchangeState {
    const ex = this.exchanges.get(name);
    if (ex === undefined)
      throw new WharfError(
        'NOT_FOUND',
        `no exchange named ${JSON.stringify(name)}; create it with createExchange first`,
      );
    return ex;
  }
}

function zero(): ExchangeCounters {
  return { published: 0, routed: 0, unroutable: 0, alternated: 0 };
}
