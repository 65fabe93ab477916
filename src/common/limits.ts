// Every limit Wharf enforces, named, with its default. docs/limits.md lists them with the reason.
// Options that override a limit take the same name.

export const LIMITS = {
  /** Largest message (key + payload + headers, encoded). */
  maxMessageBytes: 1024 * 1024,
  /**
   * The most maxMessageBytes may be raised to, for the broker, a topic or a queue: a segment and a
   * native frame to a client must still hold one message (NATIVE_LIMITS.maxClientFrameBytes).
   */
  maxMessageBytesCeiling: 64 * 1024 * 1024,
  /** Most messages in one publish call. */
  maxBatchMessages: 10_000,
  /** A consumer's handlers running at once, and the messages it leases ahead (prefetch). */
  maxConsumeConcurrency: 10_000,
  maxConsumePrefetch: 100_000,
  /** Most partitions in one topic. */
  maxPartitions: 1024,
  /** Most topics + queues + exchanges in one broker. */
  maxNames: 10_000,
  /** Most headers on one message, and the largest header key/value. */
  maxHeaders: 64,
  maxHeaderKeyBytes: 256,
  maxHeaderValueBytes: 16 * 1024,
  /** Longest type, key, groupId, dedupId or routingKey (UTF-8): the native protocol carries each with a u16 length. */
  maxFieldBytes: 65_535,
  /** Segment roll thresholds. */
  segmentBytes: 128 * 1024 * 1024,
  segmentMs: 7 * 86_400_000,
  /** Bytes between two entries of a segment's sparse offset/time index. */
  indexIntervalBytes: 4096,
  /** 'interval' fsync period. */
  fsyncIntervalMs: 1000,
  /** Largest read of a log in one call. */
  maxReadBytes: 8 * 1024 * 1024,
  /** Consumer group session: a member silent this long is removed. */
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 3_000,
  /** Longest receive long poll. */
  maxWaitMs: 20_000,
  /** Most messages one receive returns. */
  maxReceiveMessages: 1_000,
  /** Longest lease. SQS allows 12 hours. */
  maxVisibilityTimeoutMs: 12 * 3_600_000,
  /** Longest publish delay. SQS allows 15 minutes; a log-backed queue can afford more. */
  maxDelayMs: 7 * 86_400_000,
  /** Priority levels per queue. */
  maxPriorities: 10,
  /** Highest maxDeliveries a queue takes (a delivery count is a u16 in the queue journal). */
  maxDeliveries: 65_535,
  /** Largest message priority (a level above the queue's top is clamped to it): the wire carries it as a u32. */
  maxPriority: 0xffffffff,
  /** Dedup window default and ceiling. */
  dedupWindowMs: 5 * 60_000,
  maxDedupWindowMs: 86_400_000,
  /** Webhook endpoints: most POSTs in flight to one endpoint, and the longest wait for its answer. */
  maxWebhookConcurrency: 256,
  maxWebhookTimeoutMs: 300_000,
} as const;

export type LimitName = keyof typeof LIMITS;

/** Server limits (src/server): defaults for `wharf serve`, overridable by flag, env and config file unless noted. */
export const SERVER_LIMITS = {
  /** Open client connections per listener (native and HTTP count separately); one more gets a clear error. */
  maxConnections: 1_024,
  /** A connection with no traffic this long is closed. */
  idleTimeoutMs: 60_000,
  /** The longest idleTimeoutMs: Node's timers hold at most 2^31 - 1 ms and fire at once past it. */
  maxIdleTimeoutMs: 2_147_483_647,
  /** HTTP: leased messages remembered for ack/nack by receipt; the oldest is forgotten beyond this. */
  maxHttpReceipts: 100_000,
  /**
   * HTTP: most receipts one ack or nack request may carry (`receipt` and `receipts` together). Not
   * configurable: it is the largest receive (maxReceiveMessages), so a receive's answer is always
   * settled in one request, and it bounds the work and the answer of one request.
   */
  maxReceiptsPerRequest: LIMITS.maxReceiveMessages,
  /** HTTP: open Server-Sent Events streams. */
  maxSseStreams: 256,
  /** Graceful shutdown: longest wait for in-flight requests before connections are cut. */
  shutdownTimeoutMs: 10_000,
} as const;

/** Native protocol server (src/server/native) and remote client (src/client). */
export const NATIVE_LIMITS = {
  /** Most open native-protocol connections; one more is refused with LIMIT_EXCEEDED. */
  maxConnections: 1024,
  /** Largest frame either side accepts (a publish batch must fit in one). */
  maxFrameBytes: 16 * 1024 * 1024,
  /**
   * Largest DELIVER or RECEIVED frame the server sends, unless it holds one delivery only: deliveries
   * that would take a frame past it go in the next frame (a RECEIVE answers fewer than its max, the
   * rest stay ready). Also the most a server may be configured with, so the client always accepts.
   */
  maxResponseFrameBytes: 64 * 1024 * 1024,
  /**
   * Largest frame the client accepts: maxResponseFrameBytes, or one delivery of the largest message a
   * topic or queue takes (maxMessageBytes at most 64 MiB), with room for its delivery fields.
   */
  maxClientFrameBytes: 65 * 1024 * 1024,
  /** Most requests awaiting a response on one connection (pipelining window). */
  maxInFlightRequests: 4096,
  /** A connection silent this long is closed with TIMEOUT (clients ping at a third of it). */
  idleTimeoutMs: 60_000,
  /** Most unsettled received-message receipts remembered per connection. */
  maxReceiptsPerConnection: 100_000,
  /** Most subscriptions and consumers on one connection. */
  maxSubscriptionsPerConnection: 1024,
} as const;

/** Exchanges, filter policies and transactions (src/broker/exchanges). */
export const EXCHANGE_LIMITS = {
  /** Bindings on one exchange (topic exchanges route through a trie, so this can be large). */
  maxBindingsPerExchange: 100_000,
  /** Longest routing key / binding pattern, as AMQP's shortstr. */
  maxRoutingKeyBytes: 255,
  /** Headers in one filter policy, and conditions across them (SNS: 150 combinations). */
  maxFilterPolicyKeys: 10,
  maxFilterPolicyConditions: 150,
  /** Acks + messages + offset commits in one transaction (buffered in memory until commit). */
  maxTransactionOps: 10_000,
  /** Largest webhook binding URL. */
  maxWebhookUrlBytes: 2048,
} as const;
