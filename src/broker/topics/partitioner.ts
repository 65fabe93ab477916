// Which partition a message goes to: a key hashes with Kafka's murmur2 (so a key lands where a Kafka
// producer would put it); keyless messages are sticky: a run of them shares a partition (one append,
// one fsync), then the next partition takes over, round-robin; a publish call's keyless messages stay together.

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2): seed 0x9747b28c, m 0x5bd1e995, r 24. Signed int32. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length & ~3;
  for (let i = 0; i < length4; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[length4 + 2] << 16;
  if (rest >= 2) h ^= data[length4 + 1] << 8;
  if (rest >= 1) {
    h ^= data[length4];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's Utils.toPositive: clears the sign bit (not Math.abs, which breaks on MIN_VALUE). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** Kafka's default partitioner for a keyed record. */
export function partitionForKey(keyBytes: Uint8Array, numPartitions: number): number {
  return toPositive(murmur2(keyBytes)) % numPartitions;
}

/** Keyless messages that go to one partition before the spreader moves on (Kafka's sticky partitioner, KIP-480). */
export const STICKY_MESSAGES = 100;

/**
 * Spreads keyless messages: they stick to one partition for STICKY_MESSAGES messages, then move to
 * the next, round-robin. Concurrent single publishes thus fill one batch (one append, one fsync)
 * instead of one per partition, and over time every partition gets the same share.
 * One instance per topic.
 */
export class KeylessSpreader {
  private current = 0;
  private used = 0;
  constructor(private readonly numPartitions: number) {}

  /** The partition take() would give now, without taking it (a publish still being checked). */
  peek(): number {
    if (this.used < STICKY_MESSAGES) return this.current;
    return this.current + 1 === this.numPartitions ? 0 : this.current + 1;
  }

  /** The partition for the keyless messages of one publish call carrying `count` of them. */
  take(count = 1): number {
    if (this.used >= STICKY_MESSAGES) {
      this.current = this.peek();
      this.used = 0;
    }
    this.used += count;
    return this.current;
  }
}
