// Topic exchange: AMQP wildcard patterns matched through the routing trie (topic-trie.ts).
import { EXCHANGE_LIMITS, WharfError } from '../../common/index.js';
import type { BindingOptions } from '../exchange-types.js';
import type { ExchangeRouter, RoutableMessage, RouterBinding } from './router.js';
import { TopicTrie } from './topic-trie.js';

/** Longest pattern / routing key, as AMQP's shortstr. */
export const MAX_ROUTING_KEY_BYTES = EXCHANGE_LIMITS.maxRoutingKeyBytes;

export class TopicRouter implements ExchangeRouter {
  readonly type = 'topic' as const;
  private readonly trie = new TopicTrie<RouterBinding>();

  get size(): number {
    return this.trie.size;
  }

  validate(options: BindingOptions): void {
    if (typeof options.pattern !== 'string') {
      throw new WharfError('INVALID_ARGUMENT', "a topic exchange binding needs { pattern }, e.g. 'order.*' or 'eu.#'");
    }
    if (Buffer.byteLength(options.pattern) > MAX_ROUTING_KEY_BYTES) {
      throw new WharfError('INVALID_ARGUMENT', `a pattern is at most ${MAX_ROUTING_KEY_BYTES} bytes`);
    }
  }

  add(binding: RouterBinding): void {
    this.trie.add(binding.info.pattern ?? '', binding);
  }

  remove(binding: RouterBinding): void {
    this.trie.remove(binding.info.pattern ?? '', binding);
  }

  route(message: RoutableMessage, out: Set<RouterBinding>): void {
    this.trie.match(message.routingKey, out);
  }
}
