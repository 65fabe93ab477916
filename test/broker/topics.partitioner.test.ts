// A key picks its partition exactly as Kafka's default partitioner does (murmur2, toPositive, mod).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  KeylessSpreader,
  STICKY_MESSAGES,
  murmur2,
  partitionForKey,
  toPositive,
} from '../../src/broker/topics/partitioner.js';

const enc = new TextEncoder();

/**
 * An independent reference: Kafka's Utils.murmur2 transcribed literally from the Java source, with
 * 32-bit wrap-around done through BigInt so it shares no tricks with the implementation under test.
 */
function referenceMurmur2(data: Uint8Array): number {
  const M = 0x5bd1e995n;
  const wrap = (x: bigint): bigint => BigInt.asIntN(32, x);
  const ushr = (x: bigint, n: bigint): bigint => BigInt.asUintN(32, x) >> n;
  const length = data.length;
  let h = wrap(0x9747b28cn ^ BigInt(length));
  const length4 = Math.floor(length / 4);
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = wrap(
      BigInt(data[i4] & 0xff) +
        (BigInt(data[i4 + 1] & 0xff) << 8n) +
        (BigInt(data[i4 + 2] & 0xff) << 16n) +
        (BigInt(data[i4 + 3] & 0xff) << 24n),
    );
    k = wrap(k * M);
    k = wrap(k ^ ushr(k, 24n));
    k = wrap(k * M);
    h = wrap(h * M);
    h = wrap(h ^ k);
  }
  const rest = length % 4;
  const base = length & ~3;
  if (rest >= 3) h = wrap(h ^ (BigInt(data[base + 2] & 0xff) << 16n));
  if (rest >= 2) h = wrap(h ^ (BigInt(data[base + 1] & 0xff) << 8n));
  if (rest >= 1) {
    h = wrap(h ^ BigInt(data[base] & 0xff));
    h = wrap(h * M);
  }
  h = wrap(h ^ ushr(h, 13n));
  h = wrap(h * M);
  h = wrap(h ^ ushr(h, 15n));
  return Number(h);
}

describe('topic partitioner (Kafka murmur2)', () => {
  // Kafka's own vectors: org.apache.kafka.common.utils.UtilsTest.testMurmur2.
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
    ['', 275646681],
  ])('murmur2(%j) is %d as in Kafka', (input, expected) => {
    expect(murmur2(enc.encode(input))).toBe(expected);
  });

  it('hand-derived: murmur2 of the empty key is the finalised seed', () => {
    // length 0: h = seed ^ 0 = 0x9747b28c; no body, no tail; then h ^= h>>>13; h *= m; h ^= h>>>15.
    let h = 0x9747b28c | 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0x5bd1e995);
    h ^= h >>> 15;
    expect(murmur2(new Uint8Array(0))).toBe(h);
    expect(h).toBe(275646681);
  });

  it('partition = toPositive(murmur2(key)) % partitions, e.g. "foobar" over 50 partitions is 16', () => {
    expect(toPositive(-790332482)).toBe(1357151166);
    expect(partitionForKey(enc.encode('foobar'), 50)).toBe(16);
    expect(partitionForKey(enc.encode('foobar'), 50)).toBe(1357151166 % 50);
    expect(toPositive(-2147483648)).toBe(0); // Math.abs would overflow here; Kafka masks the sign bit
  });

  it('agrees with a literal BigInt transcription of the Java algorithm on random keys', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 1024 }), (bytes, n) => {
        const ref = referenceMurmur2(bytes);
        expect(murmur2(bytes)).toBe(ref);
        expect(partitionForKey(bytes, n)).toBe((ref & 0x7fffffff) % n);
      }),
      { numRuns: 2000 },
    );
  });

  it('keyless messages stick to a partition for a run, then rotate over every partition evenly', () => {
    const s = new KeylessSpreader(4);
    const counts = [0, 0, 0, 0];
    const sequence: number[] = [];
    for (let i = 0; i < 4 * STICKY_MESSAGES; i++) {
      const p = s.take();
      counts[p]++;
      if (sequence[sequence.length - 1] !== p) sequence.push(p);
    }
    expect(counts).toEqual([STICKY_MESSAGES, STICKY_MESSAGES, STICKY_MESSAGES, STICKY_MESSAGES]);
    expect(sequence).toEqual([0, 1, 2, 3]);
  });

  it('peek gives the partition take will, without moving the run on', () => {
    const s = new KeylessSpreader(3);
    for (let i = 0; i < 3 * STICKY_MESSAGES + 7; i++) {
      const seen = s.peek();
      expect(s.peek()).toBe(seen);
      expect(s.take()).toBe(seen);
    }
  });
});
