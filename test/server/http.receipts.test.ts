// The HTTP receipt book (used when a broker cannot settle by receipt itself): bounded in count and time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { ManualClock, WharfError } from '../../src/common/index.js';
import { ReceiptBook } from '../../src/server/http/receipts.js';
import { HTTP_STATUS_BY_CODE, toHttpError } from '../../src/server/http/error-map.js';
import { ERROR_CODES } from '../../src/common/index.js';

let broker: Broker;
beforeAll(async () => {
  broker = await Broker.open({ inMemory: true });
  await broker.createQueue('book', { visibilityTimeoutMs: 60_000 });
  await broker.publish('book', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
});
afterAll(async () => {
  await broker.close();
});

describe('receipt book', () => {
  it('acks a remembered delivery once, forgets the oldest beyond its limit, and expires entries with the lease', async () => {
    const clock = new ManualClock();
    const book = new ReceiptBook(clock, 2);
    const [a, b, c] = await broker.receive('book', { max: 3 });
    book.remember('book', a, 1_000);
    book.remember('book', b, 1_000);
    book.remember('book', c, 5_000);
    expect(book.size).toBe(2);
    await expect(book.ack('book', a.receipt)).rejects.toMatchObject({ code: 'RECEIPT_INVALID' }); // evicted
    await expect(book.ack('other', b.receipt)).rejects.toMatchObject({ code: 'RECEIPT_INVALID' }); // wrong queue
    await book.ack('book', b.receipt);
    await expect(book.ack('book', b.receipt)).rejects.toMatchObject({ code: 'RECEIPT_INVALID' }); // settled
    clock.advance(6_000);
    await expect(book.nack('book', c.receipt, {})).rejects.toMatchObject({ code: 'RECEIPT_INVALID' }); // lease over
    const s = await broker.stats('book');
    expect(s.kind === 'queue' && s.inFlight).toBe(2); // a and c stay leased until the broker's lease expires
  });
});

describe('HTTP error mapping', () => {
  it('maps every error code to a status, with Retry-After for QUEUE_FULL and RATE_LIMITED', () => {
    for (const code of ERROR_CODES) expect(HTTP_STATUS_BY_CODE[code]).toBeGreaterThanOrEqual(400);
    expect(toHttpError(new WharfError('NOT_FOUND', 'x')).status).toBe(404);
    expect(toHttpError(new WharfError('ALREADY_EXISTS', 'x')).status).toBe(409);
    expect(toHttpError(new WharfError('INVALID_ARGUMENT', 'x')).status).toBe(400);
    expect(toHttpError(new WharfError('MESSAGE_TOO_LARGE', 'x')).status).toBe(413);
    expect(toHttpError(new WharfError('UNAVAILABLE', 'x')).status).toBe(503);
    expect(toHttpError(new WharfError('TIMEOUT', 'x')).status).toBe(504);
    expect(toHttpError(new WharfError('RECEIPT_INVALID', 'x')).status).toBe(410);
    const full = toHttpError(new WharfError('QUEUE_FULL', 'full', { retryAfterMs: 2_500 }));
    expect(full).toMatchObject({
      status: 429,
      retryAfterSeconds: 3,
      body: { error: { code: 'QUEUE_FULL', message: 'full', retryAfterMs: 2_500 } },
    });
    expect(toHttpError(new WharfError('RATE_LIMITED', 'slow')).retryAfterSeconds).toBe(1);
    const unknown = toHttpError(new Error('boom'));
    expect(unknown).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL', message: 'boom' } } });
  });
});
