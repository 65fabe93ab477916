// Direct exchange: a binding matches when its pattern equals the routing key (one hash lookup).
import { WharfError } from '../../common/index.js';
import type { BindingOptions } from '../exchange-types.js';
import type { ExchangeRouter, RoutableMessage, RouterBinding } from './router.js';

export class DirectRouter implements ExchangeRouter {
  readonly type = 'direct' as const;
  private readonly byKey = new Map<string, Set<RouterBinding>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  validate(options: BindingOptions): void {
    if (typeof options.pattern !== 'string') {
      throw new WharfError('INVALID_ARGUMENT', 'a direct exchange binding needs { pattern: <routing key> }');
    }
  }

  add(binding: RouterBinding): void {
    const key = binding.info.pattern ?? '';
    let set = this.byKey.get(key);
    if (set === undefined) this.byKey.set(key, (set = new Set()));
    if (!set.has(binding)) {
      set.add(binding);
      this.count++;
    }
  }

  remove(binding: RouterBinding): void {
    const key = binding.info.pattern ?? '';
    const set = this.byKey.get(key);
    if (set?.delete(binding)) {
      this.count--;
      if (set.size === 0) this.byKey.delete(key);
    }
  }

  route(message: RoutableMessage, out: Set<RouterBinding>): void {
    const set = this.byKey.get(message.routingKey);
    if (set !== undefined) for (const b of set) out.add(b);
  }
}
