// Which partition a message goes to: a key hashes with Kafka's murmur2 (so a key lands where a Kafka
// producer would put it); keyless messages spread round-robin, one partition per publish call
// ("sticky" per call, so a batch stays one append).

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

/** Round-robin over partitions for keyless publishes; one instance per topic. */
export class KeylessSpreader {
  private next = 0;
  constructor(private readonly numPartitions: number) {}

  /** The partition for the keyless messages of one publish call. */
  take(): number {
    const p = this.next;
    this.next = p + 1 === this.numPartitions ? 0 : p + 1;
    return p;
  }
}
