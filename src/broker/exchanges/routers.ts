// The table of exchange types: adding a type is one file plus one line here.
import { WharfError } from '../../common/index.js';
import type { ExchangeType } from '../exchange-types.js';
import { DirectRouter } from './direct.js';
import { FanoutRouter } from './fanout.js';
import { HeadersRouter } from './headers.js';
import type { ExchangeRouter } from './router.js';
import { TopicRouter } from './topic.js';

const ROUTERS: Record<ExchangeType, () => ExchangeRouter> = {
  direct: () => new DirectRouter(),
  fanout: () => new FanoutRouter(),
  topic: () => new TopicRouter(),
  headers: () => new HeadersRouter(),
};

export const EXCHANGE_TYPES = Object.keys(ROUTERS) as ExchangeType[];

export function createRouter(type: unknown): ExchangeRouter {
  if (typeof type !== 'string' || !Object.hasOwn(ROUTERS, type)) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `unknown exchange type ${JSON.stringify(type)}; use ${EXCHANGE_TYPES.join(', ')}`,
    );
  }
  return ROUTERS[type as ExchangeType]();
}
