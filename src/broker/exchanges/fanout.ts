// Fanout exchange: every binding matches; routing keys and patterns are ignored.
import type { BindingOptions } from '../exchange-types.js';
import type { ExchangeRouter, RoutableMessage, RouterBinding } from './router.js';

export class FanoutRouter implements ExchangeRouter {
  readonly type = 'fanout' as const;
  private readonly bindings = new Set<RouterBinding>();

  get size(): number {
    return this.bindings.size;
  }

  validate(_options: BindingOptions): void {}

  add(binding: RouterBinding): void {
    this.bindings.add(binding);
  }

  remove(binding: RouterBinding): void {
    this.bindings.delete(binding);
  }

  route(_message: RoutableMessage, out: Set<RouterBinding>): void {
    for (const b of this.bindings) out.add(b);
  }
}
