// WebhookDispatcher: the delivery engine behind url bindings. Each binding owns a durable internal
// queue (reserved name) and a pusher consuming it, so pending deliveries survive a restart and a slow
// endpoint only fills its own queue. The exchange routes into targetQueueFor(bindingId).
import { LIMITS, WharfError, systemClock, validateName, type Clock } from '../../common/index.js';
import { EndpointPusher } from './pusher.js';
import type { WebhookEndpointOptions, WebhookEndpointStats, WebhookQueueHost } from './types.js';

/** Queues whose names start with this belong to webhook bindings. */
export const WEBHOOK_QUEUE_PREFIX = '__wharf.webhook.';

export const WEBHOOK_DEFAULTS = {
  concurrency: 4,
  timeoutMs: 10_000,
  maxDeliveries: 10,
  initialRetryDelayMs: 1_000,
  maxRetryDelayMs: 300_000,
} as const;

export class WebhookDispatcher {
  private readonly pushers = new Map<string, EndpointPusher>();
  private closed = false;

  constructor(
    private readonly host: WebhookQueueHost,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The queue a binding's messages are published to (the exchange routes there). */
  targetQueueFor(bindingId: string): string {
    validateName(bindingId, 'webhook binding id');
    return validateName(`${WEBHOOK_QUEUE_PREFIX}${bindingId}`, 'webhook queue name');
  }

  /** The reserved dead-letter queue used when the binding names none. */
  deadLetterQueueFor(bindingId: string): string {
    return validateName(`${this.targetQueueFor(bindingId)}.dlq`, 'webhook dead-letter queue name');
  }

  /**
   * Creates the binding's queue (if new) and (re)starts its pusher with these options. Call it on bind
   * and again for every url binding when the broker reopens: queued deliveries resume.
   */
  async ensureEndpoint(bindingId: string, options: WebhookEndpointOptions): Promise<string> {
    if (this.closed) throw new WharfError('CLOSED', 'webhook dispatcher is closed');
    const config = checkOptions(options);
    const queue = this.targetQueueFor(bindingId);
    if (!(await this.exists(queue))) {
      let deadLetterQueue = options.deadLetterQueue;
      if (deadLetterQueue === undefined) {
        deadLetterQueue = this.deadLetterQueueFor(bindingId);
        if (!(await this.exists(deadLetterQueue))) await this.host.createQueue(deadLetterQueue, {});
      }
      await this.host.createQueue(queue, {
        maxDeliveries: options.maxDeliveries ?? WEBHOOK_DEFAULTS.maxDeliveries,
        deadLetterQueue,
        retry: {
          initialDelayMs: options.initialRetryDelayMs ?? WEBHOOK_DEFAULTS.initialRetryDelayMs,
          maxDelayMs: options.maxRetryDelayMs ?? WEBHOOK_DEFAULTS.maxRetryDelayMs,
          multiplier: 2,
          jitter: 0.2,
        },
      });
    }
    await this.pushers.get(bindingId)?.stop();
    const pusher = new EndpointPusher(this.host, queue, config, this.clock);
    this.pushers.set(bindingId, pusher);
    await pusher.start();
    return queue;
  }

  /** Stops delivery and deletes the binding's queue (pending deliveries are dropped, as on unsubscribe) and its reserved DLQ. */
  async removeEndpoint(bindingId: string): Promise<void> {
    const queue = this.targetQueueFor(bindingId);
    await this.pushers.get(bindingId)?.stop();
    this.pushers.delete(bindingId);
    if (await this.exists(queue)) await this.host.deleteQueue(queue);
    const dlq = this.deadLetterQueueFor(bindingId);
    if (await this.exists(dlq)) await this.host.deleteQueue(dlq);
  }

  /** Counters since this dispatcher started the endpoint; null when it is not running. */
  stats(bindingId: string): WebhookEndpointStats | null {
    return this.pushers.get(bindingId)?.stats() ?? null;
  }

  /** Stops every pusher; queued deliveries stay in their queues. Call before closing the queues. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.pushers.values()];
    this.pushers.clear();
    await Promise.all(all.map((p) => p.stop()));
  }

  private async exists(queue: string): Promise<boolean> {
    try {
      await this.host.describeQueue(queue);
      return true;
    } catch (err) {
      if (err instanceof WharfError && err.code === 'NOT_FOUND') return false;
      throw err;
    }
  }
}

function checkOptions(o: WebhookEndpointOptions) {
  const bad = (msg: string): never => {
    throw new WharfError('INVALID_ARGUMENT', `webhook endpoint: ${msg}`);
  };
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    return bad(`url ${JSON.stringify(o.url)} is not a valid URL; use e.g. https://example.com/hook`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad(`url must be http(s), got ${url.protocol}`);
  if (typeof o.secret !== 'string' || o.secret.length === 0)
    bad('secret must be a non-empty string (it keys the HMAC signature)');
  const concurrency = o.concurrency ?? WEBHOOK_DEFAULTS.concurrency;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > LIMITS.maxWebhookConcurrency) {
    bad(`concurrency must be an integer 1..${LIMITS.maxWebhookConcurrency}, got ${concurrency}`);
  }
  const timeoutMs = o.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs;
  if (!(timeoutMs > 0) || timeoutMs > LIMITS.maxWebhookTimeoutMs)
    bad(`timeoutMs must be 1..${LIMITS.maxWebhookTimeoutMs}, got ${timeoutMs}`);
  const ratePerSecond = o.ratePerSecond ?? null;
  if (ratePerSecond !== null && !(ratePerSecond > 0)) bad(`ratePerSecond must be > 0, got ${ratePerSecond}`);
  const burst = o.burst ?? Math.max(1, ratePerSecond ?? 1);
  if (!(burst >= 1)) bad(`burst must be >= 1, got ${burst}`);
  return { url: url.toString(), secret: o.secret, concurrency, ratePerSecond, burst, timeoutMs };
}
