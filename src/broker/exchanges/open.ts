// Builds the exchanges part of a broker: journals, the host bridge to queues and topics, intent
// recovery (before anything is served), the webhook dispatcher, the exchange manager and the
// transaction coordinator. Broker.open calls openExchanges once its topic and queue managers exist.
import type { BrokerContext } from '../context.js';
import { WebhookDispatcher, type WebhookQueueHost } from '../webhooks/index.js';
import { BindingStore } from './binding-store.js';
import { BrokerHost, type QueueSide, type TopicSide } from './broker-host.js';
import { ExchangeManager } from './exchange-manager.js';
import { IntentJournal } from './intent-journal.js';
import { TransactionCoordinator } from './transaction.js';

export interface ExchangesModule {
  manager: ExchangeManager;
  transactions: TransactionCoordinator;
  webhooks: WebhookDispatcher;
  /** Intents rolled forward at open (crash recovery). */
  recoveredIntents: number;
  /** Stops webhook pushers; call before queues close. */
  stopWebhooks(): Promise<void>;
  /** Closes the journals; call after queues and topics stopped taking writes from here. */
  close(): Promise<void>;
}

export async function openExchanges(
  ctx: BrokerContext,
  topics: TopicSide,
  queues: QueueSide,
  webhookHost: WebhookQueueHost,
): Promise<ExchangesModule> {
  const journalOptions = { fsync: ctx.options.fsync, fsyncIntervalMs: ctx.options.fsyncIntervalMs };
  const now = (): number => ctx.clock.now();
  const host = new BrokerHost(ctx.catalog, topics, queues, now);
  const intents = new IntentJournal(await ctx.storage.openJournal(['exchanges', 'intents'], journalOptions), {
    apply: (op, replay) => host.apply(op, replay),
    mergeable: (target) => host.mergeable(target),
  });
  const recoveredIntents = await intents.recover();
  const webhooks = new WebhookDispatcher(webhookHost, ctx.clock);
  const bindings = new BindingStore(await ctx.storage.openJournal(['exchanges', 'bindings'], journalOptions));
  const manager = await ExchangeManager.open({
    catalog: ctx.catalog,
    bindings,
    intents,
    host,
    webhooks,
    now,
  });
  const transactions = new TransactionCoordinator(host, manager, intents, ctx.producers, now);
  return {
    manager,
    transactions,
    webhooks,
    recoveredIntents,
    stopWebhooks: () => webhooks.close(),
    close: async () => {
      await intents.close();
      await manager.close();
    },
  };
}
