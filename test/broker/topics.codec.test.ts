// Messages survive the trip to a log record and back; bad fields are rejected with their code.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeMessage, encodeMessage, newMessageId } from '../../src/broker/message-codec.js';
import type { JsonValue, MessageInput } from '../../src/broker/types.js';
import { WharfError } from '../../src/common/index.js';

const T = 1_700_000_000_000;
const roundTrip = (m: MessageInput) => decodeMessage({ ...encodeMessage(m, T, 1024 * 1024).record, offset: 0 });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof WharfError ? err.code : `not a WharfError: ${String(err)}`;
  }
  return 'no error';
}

describe('message codec', () => {
  it('keeps id, type, key, headers, JSON payload and the broker timestamp', () => {
    const m = roundTrip({
      id: 'm-1',
      type: 'order.created',
      key: 'order-456',
      headers: { region: 'eu', 'x-ü': 'ünï' },
      payload: { amount: 99.99, items: [1, 'a', null] },
    });
    expect(m).toEqual({
      id: 'm-1',
      type: 'order.created',
      key: 'order-456',
      headers: { region: 'eu', 'x-ü': 'ünï' },
      payload: { amount: 99.99, items: [1, 'a', null] },
      timestamp: T,
    });
  });

  it('keeps a Uint8Array payload as bytes, distinct from JSON', () => {
    const m = roundTrip({ payload: new Uint8Array([0, 1, 2, 255]) });
    expect(m.payload).toBeInstanceOf(Uint8Array);
    expect([...(m.payload as Uint8Array)]).toEqual([0, 1, 2, 255]);
    expect(roundTrip({ payload: [0, 1, 2] }).payload).toEqual([0, 1, 2]);
  });

  it('generates a unique time-ordered id when absent', () => {
    const a = roundTrip({ payload: 1 });
    expect(a.id.length).toBeGreaterThan(10);
    const ids = Array.from({ length: 10_000 }, () => newMessageId(T));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(newMessageId(T + 1) > ids[ids.length - 1]).toBe(true);
  });

  it("stores an idempotent producer's sequence as its decimal digits", () => {
    for (const sequence of [0, 9, 10, 99, 100, 12_345, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      const rec = encodeMessage({ producerId: 'p', sequence, payload: null }, T, 1 << 20).record;
      const stored = rec.headers.find((h) => h.key === 'wharf.seq')!.value;
      expect(Buffer.from(stored).toString('latin1')).toBe(String(sequence));
    }
  });

  it('a clock value an id cannot hold throws and leaves later ids unique; a sub-ms clock is taken to the ms', () => {
    const before = [newMessageId(T + 1_000), newMessageId(T + 1_000), newMessageId(T + 1_000)];
    expect(() => newMessageId(36 ** 9)).toThrow(/not a time a message id can hold/);
    const after = [newMessageId(T + 1_000), newMessageId(T + 1_000.5), newMessageId(T + 1_000)];
    const all = [...before, ...after];
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual(all);
  });

  it('stores each generated id as the bytes of the id it reports, across many id slabs', () => {
    const encoded = Array.from({ length: 3_000 }, (_, i) => encodeMessage({ payload: i }, T + 5, 1 << 20));
    for (const enc of encoded) {
      expect(enc.id).toMatch(/^[0-9a-z]{13}[0-9a-f]{8}$/);
      expect(decodeMessage({ ...enc.record, offset: 0 }).id).toBe(enc.id);
    }
    expect(new Set(encoded.map((e) => e.id)).size).toBe(encoded.length);
  });

  it('keeps queue/exchange fields as reserved headers, hidden from user headers', () => {
    const m = roundTrip({ priority: 7, groupId: 'g', dedupId: 'd', routingKey: 'r.k', ttlMs: 1000, payload: null });
    expect(m).toMatchObject({ priority: 7, groupId: 'g', dedupId: 'd', routingKey: 'r.k', headers: {} });
  });

  it('rejects bad fields with INVALID_ARGUMENT', () => {
    const bad: unknown[] = [
      null,
      'text',
      { id: 5 },
      { id: '' },
      { type: 1 },
      { key: 3 },
      { headers: { a: 1 } },
      { headers: { 'wharf.id': 'x' } },
      { headers: 'x' },
      { priority: -1 },
      { priority: 1.5 },
      { ttlMs: 0 },
      { payload: { big: 10n } },
      { payload: () => 1 },
      { partition: -1 },
    ];
    for (const b of bad)
      expect(
        codeOf(() => encodeMessage(b as MessageInput, T, 1024)),
        JSON.stringify(String(b)),
      ).toBe('INVALID_ARGUMENT');
  });

  it('bounds type, key, groupId, dedupId and routingKey at maxFieldBytes of UTF-8', () => {
    const limit = 65_535;
    for (const field of ['type', 'key', 'groupId', 'dedupId', 'routingKey']) {
      // At the limit in bytes, and over it: ASCII, then 3-byte characters (fewer characters, more bytes).
      expect(
        codeOf(() => encodeMessage({ [field]: 'a'.repeat(limit) } as MessageInput, T, 1024 * 1024)),
        field,
      ).toBe('no error');
      expect(
        codeOf(() => encodeMessage({ [field]: 'a'.repeat(limit + 1) } as MessageInput, T, 1024 * 1024)),
        field,
      ).toBe('INVALID_ARGUMENT');
      expect(
        codeOf(() => encodeMessage({ [field]: '€'.repeat(21_845) } as MessageInput, T, 1024 * 1024)),
        field,
      ).toBe('no error');
      expect(
        codeOf(() => encodeMessage({ [field]: '€'.repeat(21_846) } as MessageInput, T, 1024 * 1024)),
        field,
      ).toBe('INVALID_ARGUMENT');
    }
  });

  it('rejects a message over maxMessageBytes with MESSAGE_TOO_LARGE', () => {
    expect(codeOf(() => encodeMessage({ payload: new Uint8Array(2000) }, T, 1024))).toBe('MESSAGE_TOO_LARGE');
    expect(codeOf(() => encodeMessage({ payload: new Uint8Array(900) }, T, 1024))).toBe('no error');
  });

  it('round-trips any JSON payload, key and headers (property)', () => {
    const header = fc
      .string({ minLength: 1, maxLength: 20 })
      .filter((k) => !k.startsWith('wharf.') && k !== '__proto__');
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.option(fc.string(), { nil: null }),
        fc.dictionary(header, fc.string(), { maxKeys: 5 }),
        fc.string({ minLength: 1, maxLength: 30 }),
        (payload, key, headers, type) => {
          const m = roundTrip({ payload: payload as JsonValue, key, headers, type });
          // JSON has no -0; compare through JSON like a consumer on the wire would.
          expect(JSON.stringify(m.payload)).toBe(JSON.stringify(payload));
          expect(m.key).toBe(key);
          expect(m.headers).toEqual(headers);
          expect(m.type).toBe(type);
        },
      ),
      { numRuns: 300 },
    );
  });
});
