// The one interface every exchange type implements (one file per type, as LavinMQ): it indexes
// bindings and answers "which bindings match this message". Filter policies, targets, alternates
// and exchange-to-exchange hops are the registry's job, the same for every type.
import type { BindingInfo, BindingOptions, ExchangeType } from '../exchange-types.js';
import type { HeaderPredicate } from './filter-policy.js';

export interface RoutableMessage {
  routingKey: string;
  headers: Record<string, string>;
}

/** A binding as held in memory: its public description plus its compiled filter policy. */
export interface RouterBinding {
  readonly info: BindingInfo;
  readonly filter: HeaderPredicate | null;
}

export interface ExchangeRouter {
  readonly type: ExchangeType;
  readonly size: number;
  /** Throws INVALID_ARGUMENT when options do not fit this type (e.g. a topic pattern with a bad word). */
  validate(options: BindingOptions): void;
  add(binding: RouterBinding): void;
  remove(binding: RouterBinding): void;
  /** Adds every binding whose key/pattern/headers match (filter policies not yet applied). */
  route(message: RoutableMessage, out: Set<RouterBinding>): void;
}
