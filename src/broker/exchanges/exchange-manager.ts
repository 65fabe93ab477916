// Exchanges as the broker runs them: create/delete (in the catalog), durable bindings, url bindings
// wired to the webhook dispatcher, and publish = route + admission check + atomic multi-target write.
// The queue and topic writes themselves go through an ExchangeHost (the Broker), so this file never
// reaches into queue or topic internals.
import { LIMITS, WharfError, checkOptionFields, validateName } from '../../common/index.js';
import type { Catalog } from '../catalog.js';
import {
  EXCHANGE_OPTION_FIELDS,
  type BindingInfo,
  type BindingOptions,
  type BindingTarget,
  type ExchangeInfo,
  type ExchangeOptions,
  type ExchangeStats,
  type ExchangeType,
} from '../exchange-types.js';
import { newMessageId } from '../message-codec.js';
import type { MessageInput, PublishResult } from '../types.js';
import { normaliseOptions, validateTarget, type LeafTarget } from './binding.js';
import type { BindingStore } from './binding-store.js';
import { BindsInFlight, type BindInFlight } from './binds-in-flight.js';
import type { IntentJournal, IntentResults, WriteOp } from './intent-journal.js';
import { ExchangeRegistry, type NameKind } from './registry.js';
import { routedResults } from './routed-results.js';
import { createRouter } from './routers.js';

/** What exchanges need from the broker: name kinds, and admission + idempotent writes per target. */
export interface ExchangeHost {
  kindOf(name: string): NameKind;
  /** Throws what publishing these messages to the target would (NOT_FOUND, MESSAGE_TOO_LARGE, QUEUE_FULL, ...) without writing. */
  admit(target: LeafTarget, messages: MessageInput[]): void;
  /** Writes durably; a message whose dedupId the target has seen within its window is not stored again. */
  write(target: LeafTarget, messages: MessageInput[]): Promise<PublishResult[]>;
}

/** The slice of the webhook dispatcher that url bindings use. */
export interface WebhookEndpoints {
  targetQueueFor(bindingId: string): string;
  ensureEndpoint(bindingId: string, options: { url: string; secret: string }): Promise<string>;
  removeEndpoint(bindingId: string): Promise<void>;
}

export interface ExchangeManagerDeps {
  catalog: Catalog;
  bindings: BindingStore;
  intents: IntentJournal;
  host: ExchangeHost;
  webhooks: WebhookEndpoints;
  now: () => number;
}

export class ExchangeManager {
  readonly registry: ExchangeRegistry;
  private readonly inFlight = new BindsInFlight();

  private constructor(private readonly deps: ExchangeManagerDeps) {
    this.registry = new ExchangeRegistry((id) => deps.webhooks.targetQueueFor(id));
  }

  /** Loads exchanges from the catalog and bindings from their journal; resumes webhook endpoints. */
  static async open(deps: ExchangeManagerDeps): Promise<ExchangeManager> {
    const m = new ExchangeManager(deps);
    for (const e of deps.catalog.list('exchange')) {
      const config = e.config as { type: ExchangeType; alternate: string | null };
      m.registry.addExchange(e.name, config.type, config.alternate ?? null, e.createdAt);
    }
    const bindings = deps.bindings.load((name) => m.registry.has(name));
    for (const b of bindings) m.registry.addBinding(b);
    m.registry.reserveSeq(deps.bindings.highestSeq);
    if (deps.bindings.wantsCompaction) await deps.bindings.compact(bindings);
    for (const b of bindings) if ('url' in b.target) await deps.webhooks.ensureEndpoint(b.id, b.target);
    return m;
  }

  async createExchange(name: string, options: ExchangeOptions): Promise<ExchangeInfo> {
    checkOptionFields(
      options,
      EXCHANGE_OPTION_FIELDS,
      'exchange option',
      "{ type: 'direct' | 'fanout' | 'topic' | 'headers' }",
    );
    createRouter(options.type);
    const alternate = options.alternate === undefined ? null : validateName(options.alternate, 'alternate name');
    const { catalog } = this.deps;
    catalog.reserve(name, 'exchange');
    const createdAt = this.deps.now();
    try {
      await catalog.commit({ name, kind: 'exchange', config: { type: options.type, alternate }, createdAt });
    } catch (err) {
      catalog.release(name);
      throw err;
    }
    this.registry.addExchange(name, options.type, alternate, createdAt);
    return this.registry.info(name);
  }

  async deleteExchange(name: string): Promise<void> {
    this.deps.catalog.require(name, 'exchange');
    const removed = this.registry.removeExchange(name);
    // Binds under way that the drop entry removes must not reach the registry (binds-in-flight.ts);
    // no await between this and appending the drop entry.
    this.inFlight.cancelFor(name);
    // The drop entry first: if we crash before the catalog forgets the name, the exchange merely
    // comes back without bindings; the reverse order could revive stale bindings on a new namesake.
    await this.deps.bindings.drop(name, removed.length);
    await this.deps.catalog.remove(name);
    for (const b of removed) if ('url' in b.target) await this.deps.webhooks.removeEndpoint(b.id);
  }

  async listExchanges(): Promise<ExchangeInfo[]> {
    return this.registry.names().map((n) => this.registry.info(n));
  }

  async describeExchange(name: string): Promise<ExchangeInfo> {
    return this.registry.info(name);
  }

  async bind(exchange: string, target: BindingTarget, options?: BindingOptions): Promise<BindingInfo> {
    const t = validateTarget(target);
    const o = normaliseOptions(options);
    // No await from here to inFlight.start: a bind under way is an edge for the next one's cycle check.
    const { binding, existing } = this.registry.prepareBinding(
      exchange,
      t,
      o,
      this.deps.now(),
      this.inFlight.bindings(),
    );
    if (existing) return binding;
    const bind = this.inFlight.start(binding);
    try {
      return await this.complete(bind, t, o);
    } catch (err) {
      // A failed bind leaves nothing behind: a cancelled one's entry, if written, is followed by the
      // drop entry that cancelled it, and the webhook queue, dead-letter queue and pusher it made go
      // here. A failure to remove them (the broker closing) must not hide why the bind failed.
      if ('url' in t) await this.deps.webhooks.removeEndpoint(binding.id).catch(() => undefined);
      throw err;
    } finally {
      this.inFlight.end(bind);
    }
  }

  /** bind() from a prepared binding: its endpoint, its journal entry, then the registry. */
  private async complete(bind: BindInFlight, t: BindingTarget, o: BindingOptions): Promise<BindingInfo> {
    const { binding } = bind;
    if ('url' in t) await this.deps.webhooks.ensureEndpoint(binding.id, t);
    // The exchange may have been deleted while the endpoint was made: then nothing is written.
    this.inFlight.check(bind);
    await this.deps.bindings.bind(binding);
    // Deleted while the entry was written: the drop entry follows ours, so a replay drops it too.
    this.inFlight.check(bind);
    // Another bind of the same arguments may have finished while we waited: keep the first, and drop
    // what this one made (its journal entry, and for a url its webhook queue and running pusher).
    const again = this.registry.findBinding(binding.exchange, t, o);
    if (again !== null) {
      await this.deps.bindings.unbind(binding.id);
      if ('url' in t) await this.deps.webhooks.removeEndpoint(binding.id);
      return again;
    }
    this.registry.addBinding(binding);
    return binding;
  }

  async unbind(exchange: string, target: BindingTarget, options?: BindingOptions): Promise<void> {
    const t = validateTarget(target);
    const found = this.registry.findBinding(exchange, t, normaliseOptions(options));
    if (found === null)
      throw new WharfError(
        'NOT_FOUND',
        `exchange ${exchange} has no binding to ${JSON.stringify('url' in t ? { url: t.url } : t)} with these options`,
      );
    this.registry.removeBinding(found.id);
    await this.deps.bindings.unbind(found.id);
    if ('url' in found.target) await this.deps.webhooks.removeEndpoint(found.id);
  }

  async listBindings(exchange?: string): Promise<BindingInfo[]> {
    return this.registry.listBindings(exchange);
  }

  async stats(name: string): Promise<ExchangeStats> {
    const info = this.registry.info(name);
    return { kind: 'exchange', name, type: info.type, bindings: info.bindings, ...this.registry.counters(name) };
  }

  /**
   * Plans the writes of a publish to an exchange: messages get their id now (so a replay writes the
   * same message) and, when routed to several places, a dedupId (their id) that makes replays
   * idempotent. `inputsOf[k]`: the index in `inputs` of each message of `ops[k]`. `commit` adds the
   * stats of every message but those whose result (when given) is a duplicate: they were stored nowhere.
   */
  plan(
    exchange: string,
    inputs: MessageInput[],
  ): {
    ops: WriteOp[];
    inputsOf: number[][];
    ids: string[];
    routed: number[];
    commit: (results?: readonly PublishResult[]) => void;
  } {
    const byTarget = new Map<string, { op: WriteOp; inputs: number[] }>();
    const kindOf = (n: string): NameKind => this.deps.host.kindOf(n);
    const plans = inputs.map((input, i) => {
      // Object.assign, then set: on Node 20 `{ ...input, id }` (a spread plus a new key) costs
      // microseconds per call, and this runs for every message published to an exchange.
      const message: MessageInput = Object.assign({}, input);
      message.id ??= newMessageId(this.deps.now());
      const plan = this.registry.plan(
        exchange,
        message.routingKey ?? message.type ?? '',
        message.headers ?? {},
        kindOf,
      );
      if (plan.targets.length > 1 || inputs.length > 1) message.dedupId ??= message.id;
      for (const target of plan.targets) {
        const key = `${target.kind}:${target.name}`;
        let write = byTarget.get(key);
        if (write === undefined) {
          write = { op: { op: 'write', kind: target.kind, name: target.name, messages: [] }, inputs: [] };
          byTarget.set(key, write);
        }
        write.op.messages.push(message);
        write.inputs.push(i);
      }
      return { id: message.id, plan };
    });
    const writes = [...byTarget.values()];
    return {
      ops: writes.map((w) => w.op),
      inputsOf: writes.map((w) => w.inputs),
      ids: plans.map((p) => p.id),
      routed: plans.map((p) => p.plan.targets.length),
      commit: (results) =>
        plans.forEach((p, i) => {
          if (results?.[i].duplicate !== true) this.registry.count(p.plan);
        }),
    };
  }

  /** publish(exchange, messages): all matching targets get every message, or (on error) none do. */
  async publish(exchange: string, inputs: MessageInput[]): Promise<PublishResult[]> {
    if (inputs.length > LIMITS.maxBatchMessages) {
      throw new WharfError(
        'LIMIT_EXCEEDED',
        `a batch of ${inputs.length} messages is over maxBatchMessages (${LIMITS.maxBatchMessages}); split it`,
      );
    }
    const { ops, inputsOf, ids, routed, commit } = this.plan(exchange, inputs);
    let said: IntentResults = [];
    if (ops.length === 1 && ops[0].messages.length === 1) {
      // One message to one place is atomic by itself (the target validates and admits it): no
      // separate admission, no intent.
      said = [await this.deps.host.write({ kind: ops[0].kind, name: ops[0].name }, ops[0].messages)];
    } else if (ops.length > 0) {
      for (const op of ops) this.deps.host.admit({ kind: op.kind, name: op.name }, op.messages);
      said = await this.deps.intents.run({ id: newMessageId(this.deps.now()), ops });
    }
    // A repeat answers as its original did, whether it reached one target or several (routed-results.ts).
    const results = routedResults(ids, routed, inputsOf, said);
    commit(results);
    return results;
  }

  /** Closes the binding journal (the intent journal and webhooks are closed by the broker). */
  async close(): Promise<void> {
    await this.deps.bindings.close();
  }
}
