// One endpoint's pusher: consumes the binding's internal queue and POSTs each message, signed.
// 2xx acks; any other status, a network error or a timeout throws, which nacks the delivery with the
// queue's exponential backoff (durable, in the queue journal) until maxDeliveries dead-letters it.
// A delivery still waiting for a rate token when the pusher stops was never sent: it goes back to
// the queue uncounted.
import { WharfError, type Clock, type TimerHandle } from '../../common/index.js';
import type { Consumer, QueueMessage } from '../queue-types.js';
import { HandlerOutcome } from '../queues/handler-outcome.js';
import { SIGNATURE_HEADER, signWebhookBody } from './signature.js';
import { TokenBucket } from './token-bucket.js';
import type { WebhookEndpointStats, WebhookQueueHost } from './types.js';

export interface PusherConfig {
  url: string;
  secret: string;
  concurrency: number;
  ratePerSecond: number | null;
  burst: number;
  timeoutMs: number;
}

/** The POST body: the message as the seed shows it. deliveryCount is a header so the body (and signature input) is stable across attempts. */
export function webhookBody(m: QueueMessage): string {
  const body: Record<string, unknown> = {
    id: m.id,
    type: m.type,
    timestamp: m.timestamp,
    key: m.key,
    headers: m.headers,
  };
  if (m.payload instanceof Uint8Array) body.payloadBase64 = Buffer.from(m.payload).toString('base64');
  else body.payload = m.payload;
  if (m.routingKey !== undefined) body.routingKey = m.routingKey;
  return JSON.stringify(body);
}

/** How much longer than one POST's timeout a delivery's lease lasts. */
const LEASE_MARGIN_MS = 60_000;

export class EndpointPusher {
  private consumer: Consumer | null = null;
  private readonly bucket: TokenBucket | null;
  private readonly counters: WebhookEndpointStats;

  constructor(
    private readonly host: WebhookQueueHost,
    private readonly queue: string,
    private readonly config: PusherConfig,
    private readonly clock: Clock,
  ) {
    this.bucket = config.ratePerSecond === null ? null : new TokenBucket(config.ratePerSecond, config.burst, clock);
    this.counters = { url: config.url, delivered: 0, failed: 0, inFlight: 0, lastStatus: null, lastError: null };
  }

  /** A lease that outlasts one POST (a slow POST is not redelivered while it runs). */
  private get leaseMs(): number {
    return this.config.timeoutMs + LEASE_MARGIN_MS;
  }

  async start(): Promise<void> {
    this.consumer = await this.host.consume(
      this.queue,
      { concurrency: this.config.concurrency, prefetch: this.config.concurrency, visibilityTimeoutMs: this.leaseMs },
      (m) => this.deliver(m),
    );
  }

  stats(): WebhookEndpointStats {
    return { ...this.counters };
  }

  async stop(): Promise<void> {
    this.bucket?.close();
    const consumer = this.consumer;
    this.consumer = null;
    await consumer?.close();
  }

  /**
   * An outcome, not a promise, so a delivery can also end unsent: a rate-token wait that stop() cut
   * short hands the message back uncounted (no attempt spent, no backoff), as a closing consumer
   * hands back the leases its handlers never got.
   */
  private deliver(m: QueueMessage): HandlerOutcome {
    const outcome = new HandlerOutcome();
    void this.deliverWhenAllowed(m, outcome);
    return outcome;
  }

  private async deliverWhenAllowed(m: QueueMessage, outcome: HandlerOutcome): Promise<void> {
    // A token free at once needs no lease kept: the delivery's is as fresh as when it was leased.
    if (this.bucket !== null && !this.bucket.takeNow() && !(await this.tokenWithLease(this.bucket, m)))
      return outcome.unsent();
    try {
      await this.post(m);
      outcome.succeeded();
    } catch (err) {
      outcome.failed(err as Error);
    }
  }

  /**
   * Waits for a rate token while keeping the delivery's lease: a slow rate (or a long queue for its
   * tokens) can outlast a lease, and a lost one makes the message visible again, to be sent by a new
   * delivery while this one still waits, so the endpoint would get it twice. The lease is renewed
   * every half lease while waiting, and once more for the POST. False (unsent) when the pusher
   * stopped, or the lease was lost all the same (the message is someone else's now).
   */
  private async tokenWithLease(bucket: TokenBucket, m: QueueMessage): Promise<boolean> {
    let waiting = true;
    let lost = false;
    const renewal: { timer: TimerHandle | null } = { timer: null };
    const renewLater = (): void => {
      if (!waiting) return;
      renewal.timer = this.clock.setTimer(this.leaseMs / 2, () => {
        m.extendVisibility(this.leaseMs).then(renewLater, () => (lost = true));
      });
    };
    renewLater();
    let granted: boolean;
    try {
      granted = await bucket.take();
    } finally {
      waiting = false;
      renewal.timer?.cancel();
    }
    if (!granted || lost) return false;
    try {
      await m.extendVisibility(this.leaseMs);
      return true;
    } catch {
      return false;
    }
  }

  /** One POST: resolves on 2xx, otherwise throws a WharfError saying why. */
  private async post(m: QueueMessage): Promise<void> {
    const body = webhookBody(m);
    this.counters.inFlight++;
    try {
      const response = await fetch(this.config.url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.config.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'wharf-webhooks',
          'x-wharf-id': m.id,
          'x-wharf-type': m.type,
          'x-wharf-timestamp': String(m.timestamp),
          'x-wharf-delivery-count': String(m.deliveryCount),
          [SIGNATURE_HEADER]: signWebhookBody(body, this.config.secret),
        },
      });
      await response.body?.cancel().catch(() => undefined); // free the connection; the body is not used
      this.counters.lastStatus = response.status;
      if (response.status < 200 || response.status > 299) {
        throw new WharfError(
          'UNAVAILABLE',
          `webhook ${this.config.url} answered HTTP ${response.status}; will retry with backoff`,
        );
      }
      this.counters.delivered++;
      this.counters.lastError = null;
    } catch (err) {
      this.counters.failed++;
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      const error = timedOut
        ? new WharfError(
            'TIMEOUT',
            `webhook ${this.config.url} did not answer within ${this.config.timeoutMs} ms; will retry with backoff`,
          )
        : err instanceof WharfError
          ? err
          : new WharfError(
              'UNAVAILABLE',
              `webhook ${this.config.url} failed: ${(err as Error).message}; will retry with backoff`,
              { cause: err },
            );
      this.counters.lastError = error.message;
      throw error;
    } finally {
      this.counters.inFlight--;
    }
  }
}
