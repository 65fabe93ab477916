// The RecordBatch v2 codec: byte-exact against hand-computed fixtures, and round-trips for any input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, MAX_TIMESTAMP_MS, type RecordInput } from '../../src/storage/index.js';
import { ByteReader, sizeOfVarint, sizeOfVarlong, writeVarint, writeVarlong } from '../../src/storage/varint.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');

/** Bitwise CRC32C (Castagnoli, reflected 0x82F63B78): an independent check of the fixture CRCs. */
function referenceCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of bytes) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

// Two records at offsets 5 and 6: ('k' -> 'v' at t=1000) and (null key -> 'hi' at t=1005, header h=x).
const GOLDEN_TWO_RECORDS = hex(`
  00 00 00 00 00 00 00 05   # baseOffset 5
  00 00 00 47               # batchLength 71 (= 83 - 12)
  00 00 00 00               # partitionLeaderEpoch 0
  02                        # magic 2
  a9 d9 b0 8f               # crc32c of bytes 21..83
  00 00                     # attributes: no compression, create time, not transactional/control
  00 00 00 01               # lastOffsetDelta 1
  00 00 00 00 00 00 03 e8   # baseTimestamp 1000
  00 00 00 00 00 00 03 ed   # maxTimestamp 1005
  ff ff ff ff ff ff ff ff   # producerId -1
  ff ff                     # producerEpoch -1
  ff ff ff ff               # baseSequence -1
  00 00 00 02               # recordCount 2
  10                        # record 0: length 8 (zigzag 16)
  00                        #   attributes
  00                        #   timestampDelta 0
  00                        #   offsetDelta 0
  02 6b                     #   keyLength 1, 'k'
  02 76                     #   valueLength 1, 'v'
  00                        #   headerCount 0
  18                        # record 1: length 12 (zigzag 24)
  00                        #   attributes
  0a                        #   timestampDelta 5 (zigzag 10)
  02                        #   offsetDelta 1
  01                        #   keyLength -1 (null)
  04 68 69                  #   valueLength 2, 'hi'
  02                        #   headerCount 1
  02 68                     #   header key length 1, 'h'
  02 78                     #   header value length 1, 'x'
`);

// One transactional record with producer fields, offset above 2^32 and a timestamp of 2^40.
const GOLDEN_PRODUCER = hex(`
  00 00 00 01 00 00 00 02   # baseOffset 2^32 + 2
  00 00 00 38               # batchLength 56
  00 00 00 00               # partitionLeaderEpoch
  02                        # magic
  6f 68 ac 0d               # crc
  00 10                     # attributes: transactional (bit 4)
  00 00 00 00               # lastOffsetDelta 0
  00 00 01 00 00 00 00 00   # baseTimestamp 2^40
  00 00 01 00 00 00 00 00   # maxTimestamp 2^40
  00 00 00 12 34 56 78 9a   # producerId 0x123456789a
  00 03                     # producerEpoch 3
  00 00 00 07               # baseSequence 7
  00 00 00 01               # recordCount 1
  0c 00 00 00 01 01 00      # record: length 6, attrs, tsDelta 0, offsetDelta 0, key null, value null, 0 headers
`);

describe('record batch codec: golden bytes', () => {
  it('encodes a two-record batch byte for byte as Kafka RecordBatch v2', () => {
    const bytes = encodeBatch({
      baseOffset: 5,
      records: [
        { key: Buffer.from('k'), value: Buffer.from('v'), headers: [], timestampMs: 1000 },
        { key: null, value: Buffer.from('hi'), headers: [{ key: 'h', value: Buffer.from('x') }], timestampMs: 1005 },
      ],
    });
    expect(bytes.toString('hex')).toBe(GOLDEN_TWO_RECORDS.toString('hex'));
    expect(referenceCrc32c(GOLDEN_TWO_RECORDS.subarray(21))).toBe(0xa9d9b08f);
  });

  it('encodes producer id, epoch, sequence, the transactional flag and 64-bit offsets', () => {
    const bytes = encodeBatch({
      baseOffset: 2 ** 32 + 2,
      records: [{ key: null, value: null, headers: [], timestampMs: 2 ** 40 }],
      producer: { producerId: 0x123456789a, producerEpoch: 3, baseSequence: 7, isTransactional: true },
    });
    expect(bytes.toString('hex')).toBe(GOLDEN_PRODUCER.toString('hex'));
    expect(referenceCrc32c(GOLDEN_PRODUCER.subarray(21))).toBe(0x6f68ac0d);
  });

  it('decodes the golden batches back to their fields', () => {
    const { header, records } = decodeBatch(GOLDEN_TWO_RECORDS);
    expect(header).toMatchObject({
      baseOffset: 5,
      sizeBytes: 83,
      magic: 2,
      recordCount: 2,
      baseTimestampMs: 1000,
      maxTimestampMs: 1005,
      producerId: -1,
    });
    expect(
      records.map((r) => [
        r.offset,
        r.timestampMs,
        r.key && Buffer.from(r.key).toString(),
        Buffer.from(r.value!).toString(),
      ]),
    ).toEqual([
      [5, 1000, 'k', 'v'],
      [6, 1005, null, 'hi'],
    ]);
    expect(records[1].headers.map((h) => [h.key, Buffer.from(h.value).toString()])).toEqual([['h', 'x']]);
    const p = decodeBatch(GOLDEN_PRODUCER);
    expect(p.header).toMatchObject({
      baseOffset: 2 ** 32 + 2,
      attributes: 0x10,
      producerId: 0x123456789a,
      producerEpoch: 3,
      baseSequence: 7,
    });
    expect(p.records[0]).toMatchObject({ offset: 2 ** 32 + 2, timestampMs: 2 ** 40, key: null, value: null });
  });

  it('decodes values as views of the batch buffer, without copying', () => {
    const { records } = decodeBatch(GOLDEN_TWO_RECORDS);
    expect(records[0].value!.buffer).toBe(GOLDEN_TWO_RECORDS.buffer);
  });

  it('rejects a batch with a flipped byte as CORRUPT_DATA', () => {
    for (const position of [0, 17, 30, 70, 82]) {
      const bad = Buffer.from(GOLDEN_TWO_RECORDS);
      bad[position] ^= 0x01;
      if (position < 17) continue; // baseOffset/length are outside the CRC; length is checked separately
      expect(() => decodeBatch(bad)).toThrowError(expect.objectContaining({ code: 'CORRUPT_DATA' }));
    }
    expect(() => decodeBatch(GOLDEN_TWO_RECORDS.subarray(0, 80))).toThrowError(
      expect.objectContaining({ code: 'CORRUPT_DATA' }),
    );
  });
});

describe('zigzag varints', () => {
  it('match the protobuf encoding for known values', () => {
    const cases: Array<[number, string]> = [
      [0, '00'],
      [-1, '01'],
      [1, '02'],
      [63, '7e'],
      [-64, '7f'],
      [64, '8001'],
      [300, 'd804'],
      [2147483647, 'feffffff0f'],
      [-2147483648, 'ffffffff0f'],
    ];
    for (const [n, bytes] of cases) {
      const buf = Buffer.alloc(10);
      const end = writeVarint(buf, 0, n);
      expect(buf.subarray(0, end).toString('hex')).toBe(bytes);
      expect(sizeOfVarint(n)).toBe(end);
      expect(new ByteReader(buf, 0, end).readVarint()).toBe(n);
    }
    const big = Buffer.alloc(10);
    const end = writeVarlong(big, 0, 2 ** 40);
    expect(big.subarray(0, end).toString('hex')).toBe('808080808040'); // zigzag 2^41: five 7-bit zero groups, then 0x40
    expect(new ByteReader(big, 0, end).readVarlong()).toBe(2 ** 40);
  });

  it('round-trip every int32 and every |int| < 2^52', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (n) => {
        const buf = Buffer.alloc(5);
        const end = writeVarint(buf, 0, n);
        return end === sizeOfVarint(n) && new ByteReader(buf, 0, end).readVarint() === n;
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 52) + 1, max: 2 ** 52 - 1 }), (n) => {
        const buf = Buffer.alloc(10);
        const end = writeVarlong(buf, 0, n);
        return end === sizeOfVarlong(n) && new ByteReader(buf, 0, end).readVarlong() === n;
      }),
    );
  });
});

const bytesArb = fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u));
const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  key: fc.option(bytesArb, { nil: null }),
  value: fc.option(bytesArb, { nil: null }),
  headers: fc.array(fc.record({ key: fc.string({ unit: 'grapheme', maxLength: 8 }), value: bytesArb }), {
    maxLength: 3,
  }),
  timestampMs: fc.integer({ min: 0, max: MAX_TIMESTAMP_MS }),
});

describe('record batch codec: round trip', () => {
  it('decodes whatever it encodes, for any records, offsets and producer fields', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 2 ** 53 - 2 ** 20 }),
        fc.option(
          fc.record({
            producerId: fc.integer({ min: -1, max: 2 ** 53 - 1 }),
            producerEpoch: fc.integer({ min: -1, max: 0x7fff }),
            baseSequence: fc.integer({ min: -1, max: 0x7fffffff }),
            isTransactional: fc.boolean(),
            isControl: fc.boolean(),
          }),
          { nil: undefined },
        ),
        (records, baseOffset, producer) => {
          const bytes = encodeBatch({ baseOffset, records, producer });
          const { header, records: out } = decodeBatch(bytes);
          expect(header.baseOffset).toBe(baseOffset);
          expect(header.recordCount).toBe(records.length);
          expect(header.maxTimestampMs).toBe(Math.max(...records.map((r) => r.timestampMs)));
          expect(header.producerId).toBe(producer?.producerId ?? -1);
          expect((header.attributes & 0x10) !== 0).toBe(producer?.isTransactional ?? false);
          expect((header.attributes & 0x20) !== 0).toBe(producer?.isControl ?? false);
          expect(out.length).toBe(records.length);
          out.forEach((r, i) => {
            expect(r.offset).toBe(baseOffset + i);
            expect(r.timestampMs).toBe(records[i].timestampMs);
            expect(r.key === null ? null : Buffer.from(r.key)).toEqual(records[i].key);
            expect(r.value === null ? null : Buffer.from(r.value)).toEqual(records[i].value);
            expect(r.headers.map((h) => [h.key, Buffer.from(h.value)])).toEqual(
              records[i].headers.map((h) => [h.key, h.value]),
            );
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
