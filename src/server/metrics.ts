// Prometheus metrics for /metrics. Broker figures are read from broker.stats() on every scrape (no
// bookkeeping on the hot path); listener figures come from each listener's connection counters.
// Rates are the broker's own per-second rates, exposed as gauges named *_per_second.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { isWharfError, toWharfError, type WharfError } from '../common/index.js';
import type { QueueStats } from '../broker/index.js';
import type { TopicStats } from '../broker/index.js';
import type { Stats } from '../broker/index.js';
import type { HttpBroker } from './http/broker-port.js';
import { hasExchanges, hasQueues } from './http/broker-port.js';
import type { ListenerStats } from './http/connections.js';

export type ListenerStatsSource = () => ListenerStats | null;

type G = Gauge<string>;
type NameKind = 'topic' | 'queue' | 'exchange';

/** Told of each name whose stats failed during a scrape (other than for its deletion meanwhile). */
export type StatsErrorListener = (kind: NameKind, name: string, err: WharfError) => void;

export class BrokerMetrics {
  readonly registry = new Registry();
  private readonly g: Record<string, G> = {};
  /** The scrape under way, shared by scrapes that arrive meanwhile. */
  private running: Promise<string> | null = null;
  private readonly bytesIn: Counter<string>;
  private readonly bytesOut: Counter<string>;
  private readonly statsErrors: Counter<string>;
  private readonly lastBytes = new Map<string, { in: number; out: number }>();

  constructor(
    private readonly broker: HttpBroker,
    private readonly listeners: Record<string, ListenerStatsSource>,
    private readonly onStatsError: StatsErrorListener = () => undefined,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'wharf_' }); // names like wharf_process_cpu_seconds_total
    const gauge = (name: string, help: string, labelNames: string[]): void => {
      this.g[name] = new Gauge({ name, help, labelNames, registers: [this.registry] });
    };
    gauge('wharf_queue_depth', 'Messages ready for delivery', ['queue']);
    gauge('wharf_queue_in_flight', 'Messages leased and not yet settled', ['queue']);
    gauge('wharf_queue_delayed', 'Messages waiting for their delay to pass', ['queue']);
    gauge('wharf_queue_dead_lettered', 'Messages this queue moved to its dead-letter queue', ['queue']);
    gauge('wharf_queue_dlq_depth', "Messages waiting in this queue's dead-letter queue", ['queue']);
    gauge(
      'wharf_queue_oldest_message_age_seconds',
      'Age of the oldest unsettled message, since its publish or the redrive that brought it back',
      ['queue'],
    );
    gauge('wharf_queue_bytes', 'Bytes held by the queue', ['queue']);
    gauge(
      'wharf_queue_expired',
      'Messages of the queue that expired since the broker opened, dropped or dead-lettered (onExpire)',
      ['queue'],
    );
    gauge(
      'wharf_queue_dropped',
      'Messages the queue dropped since the broker opened: by its overflow policy, or at maxDeliveries without a dead-letter queue',
      ['queue'],
    );
    gauge(
      'wharf_queue_receive_errors',
      "Receives of the queue that failed since the broker opened, its consumers' included (they retry them)",
      ['queue'],
    );
    gauge(
      'wharf_queue_dead_letter_errors',
      'Messages the queue could not move to its dead-letter queue since the broker opened',
      ['queue'],
    );
    for (const r of ['publish', 'deliver', 'ack', 'nack', 'error']) {
      gauge(`wharf_queue_${r}_per_second`, `Queue ${r} rate`, ['queue']);
    }
    gauge('wharf_topic_messages', 'Messages retained in the topic', ['topic']);
    gauge('wharf_topic_bytes', 'Bytes retained by the topic', ['topic']);
    gauge('wharf_topic_partition_end_offset', 'Offset the next message of the partition gets', ['topic', 'partition']);
    gauge('wharf_topic_group_lag', 'Messages the consumer group has not committed yet', ['topic', 'group']);
    gauge('wharf_topic_group_members', 'Members of the consumer group', ['topic', 'group']);
    for (const r of ['publish', 'deliver', 'error']) {
      gauge(`wharf_topic_${r}_per_second`, `Topic ${r} rate`, ['topic']);
    }
    gauge('wharf_exchange_bindings', 'Bindings of the exchange', ['exchange']);
    gauge('wharf_exchange_routed', 'Deliveries into bound targets', ['exchange']);
    gauge('wharf_exchange_unroutable', 'Messages that matched no binding', ['exchange']);
    gauge('wharf_connections', 'Open client connections', ['listener']);
    gauge('wharf_connections_rejected', 'Connections refused for being over maxConnections', ['listener']);
    this.bytesIn = new Counter({
      name: 'wharf_bytes_received_total',
      help: 'Bytes read from clients',
      labelNames: ['listener'],
      registers: [this.registry],
    });
    this.bytesOut = new Counter({
      name: 'wharf_bytes_sent_total',
      help: 'Bytes written to clients',
      labelNames: ['listener'],
      registers: [this.registry],
    });
    this.statsErrors = new Counter({
      name: 'wharf_stats_errors_total',
      help: 'Names whose stats failed during a scrape, so their series were missing from it (not counting names deleted meanwhile)',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    // At 0 from the start, so the first failure is an increase Prometheus sees.
    for (const { kind } of this.listers()) this.statsErrors.inc({ kind }, 0);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Reads every name's stats and renders the Prometheus text format. Scrapes that overlap (two
   * Prometheus servers, a curl during a scrape) share one: the gauges are shared, and a second
   * scrape resetting them while the first still read stats left the first with most series missing.
   */
  scrape(): Promise<string> {
    if (this.running === null) {
      this.running = this.scrapeOnce().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  private async scrapeOnce(): Promise<string> {
    const all: Stats[] = [];
    for (const { kind, name } of await this.names()) {
      try {
        all.push(await this.broker.stats(name));
      } catch (err) {
        if (isWharfError(err, 'NOT_FOUND')) continue; // deleted between list and stats
        // Any other failure leaves the name out of this scrape and the rest in; counted and told, so
        // missing series are seen rather than taken for a name with nothing to report.
        this.statsErrors.inc({ kind });
        this.onStatsError(kind, name, toWharfError(err));
      }
    }
    // Reset, record and render in one step: nothing runs in between.
    for (const gauge of Object.values(this.g)) gauge.reset();
    for (const stats of all) this.record(stats);
    this.recordListeners();
    return this.registry.metrics();
  }

  private async names(): Promise<Array<{ kind: NameKind; name: string }>> {
    const out: Array<{ kind: NameKind; name: string }> = [];
    for (const { kind, list } of this.listers()) for (const n of await list()) out.push({ kind, name: n.name });
    return out;
  }

  /** Each kind of name this broker has, with how to list its names: one place to add a kind. */
  private listers(): Array<{ kind: NameKind; list: () => Promise<Array<{ name: string }>> }> {
    const b = this.broker;
    const out: Array<{ kind: NameKind; list: () => Promise<Array<{ name: string }>> }> = [
      { kind: 'topic', list: () => b.listTopics() },
    ];
    if (hasQueues(b)) out.push({ kind: 'queue', list: () => b.listQueues() });
    if (hasExchanges(b)) out.push({ kind: 'exchange', list: () => b.listExchanges() });
    return out;
  }

  private record(stats: Stats): void {
    if (stats.kind === 'queue') this.recordQueue(stats);
    else if (stats.kind === 'topic') this.recordTopic(stats);
    else {
      const l = { exchange: stats.name };
      this.g.wharf_exchange_bindings.set(l, stats.bindings);
      this.g.wharf_exchange_routed.set(l, stats.routed);
      this.g.wharf_exchange_unroutable.set(l, stats.unroutable);
    }
  }

  private recordQueue(s: QueueStats): void {
    const l = { queue: s.name };
    this.g.wharf_queue_depth.set(l, s.depth);
    this.g.wharf_queue_in_flight.set(l, s.inFlight);
    this.g.wharf_queue_delayed.set(l, s.delayed);
    this.g.wharf_queue_dead_lettered.set(l, s.deadLettered);
    this.g.wharf_queue_dlq_depth.set(l, s.dlqDepth);
    this.g.wharf_queue_oldest_message_age_seconds.set(l, s.oldestAgeMs / 1000);
    this.g.wharf_queue_bytes.set(l, s.bytes);
    this.g.wharf_queue_expired.set(l, s.expired);
    this.g.wharf_queue_dropped.set(l, s.dropped);
    this.g.wharf_queue_receive_errors.set(l, s.receiveErrors);
    this.g.wharf_queue_dead_letter_errors.set(l, s.deadLetterErrors);
    this.g.wharf_queue_publish_per_second.set(l, s.publishRate);
    this.g.wharf_queue_deliver_per_second.set(l, s.deliverRate);
    this.g.wharf_queue_ack_per_second.set(l, s.ackRate);
    this.g.wharf_queue_nack_per_second.set(l, s.nackRate);
    this.g.wharf_queue_error_per_second.set(l, s.errorRate);
  }

  private recordTopic(s: TopicStats): void {
    const l = { topic: s.name };
    this.g.wharf_topic_messages.set(l, s.messages);
    this.g.wharf_topic_bytes.set(l, s.bytes);
    for (const p of s.partitions) {
      this.g.wharf_topic_partition_end_offset.set({ topic: s.name, partition: String(p.partition) }, p.endOffset);
    }
    for (const [group, gs] of Object.entries(s.groups)) {
      this.g.wharf_topic_group_lag.set({ topic: s.name, group }, gs.lag);
      this.g.wharf_topic_group_members.set({ topic: s.name, group }, gs.members);
    }
    this.g.wharf_topic_publish_per_second.set(l, s.publishRate);
    this.g.wharf_topic_deliver_per_second.set(l, s.deliverRate);
    this.g.wharf_topic_error_per_second.set(l, s.errorRate);
  }

  private recordListeners(): void {
    for (const [listener, source] of Object.entries(this.listeners)) {
      const s = source();
      if (!s) continue;
      this.g.wharf_connections.set({ listener }, s.connections);
      this.g.wharf_connections_rejected.set({ listener }, s.rejectedConnections);
      const last = this.lastBytes.get(listener) ?? { in: 0, out: 0 };
      this.bytesIn.inc({ listener }, Math.max(0, s.bytesIn - last.in));
      this.bytesOut.inc({ listener }, Math.max(0, s.bytesOut - last.out));
      this.lastBytes.set(listener, { in: Math.max(last.in, s.bytesIn), out: Math.max(last.out, s.bytesOut) });
    }
  }
}
