// A flipped byte inside a stored batch is reported as CORRUPT_DATA and never handed out as a message.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import type { WharfError } from '../../src/common/index.js';
import { codeOf, sleep, tempDir, waitFor } from './topics-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Byte ranges of the record batches in a segment file (Kafka v2: baseOffset int64, batchLength int32, ...). */
function batchRanges(bytes: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let pos = 0;
  while (pos + 12 <= bytes.length) {
    const end = pos + 12 + bytes.readInt32BE(pos + 8);
    out.push([pos, end]);
    pos = end;
  }
  return out;
}

/** Segment files of the test topic, oldest first (names are zero-padded base offsets). */
function segments(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.log') && d.includes('corrupt')) found.push(join(d, e.name));
    }
  };
  walk(dir);
  return found.sort();
}

/** Flips one byte inside the records of the middle batch of a segment file. */
function flipByteInMiddleBatch(file: string): void {
  const bytes = readFileSync(file);
  const ranges = batchRanges(bytes);
  expect(ranges.length).toBeGreaterThanOrEqual(3);
  const [start, end] = ranges[1];
  bytes[start + Math.floor((end - start) * 0.75)] ^= 0xff;
  writeFileSync(file, bytes);
}

type Payload = { batch: number; i: number; text: string };

async function writeBatches(dir: string, segmentBytes: number, batches: number): Promise<void> {
  const b = await Broker.open({ dataDir: dir });
  await b.createTopic('corrupt', { partitions: 1, segmentBytes });
  for (let batch = 0; batch < batches; batch++) {
    await b.publish(
      'corrupt',
      Array.from({ length: 5 }, (_, i) => ({ payload: { batch, i, text: 'intact payload text' } })),
    );
  }
  await b.close();
}

describe('topics: corruption', () => {
  it('a byte flipped under a running broker is reported to the reader as CORRUPT_DATA and none of its messages are delivered', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const broker = await Broker.open({ dataDir: dir });
    cleanups.push(() => broker.close());
    await broker.createTopic('corrupt', { partitions: 1 });
    for (let batch = 0; batch < 3; batch++) {
      await broker.publish(
        'corrupt',
        Array.from({ length: 5 }, (_, i) => ({ payload: { batch, i, text: 'intact payload text' } })),
      );
    }
    const files = segments(dir);
    expect(files.length).toBe(1);
    flipByteInMiddleBatch(files[0]); // bit rot after the data was verified on open

    const errors: WharfError[] = [];
    const delivered: Payload[] = [];
    const sub = await broker.subscribe('corrupt', { from: 'earliest', onError: (e) => errors.push(e) }, (m) => {
      delivered.push(m.payload as Payload);
    });
    cleanups.push(() => sub.close());
    await waitFor(() => errors.length > 0, 'a reported error');
    await sleep(50);
    expect(errors[0].code).toBe('CORRUPT_DATA');
    // The batch before is served intact; nothing of (or after) the corrupt one is.
    expect(delivered).toEqual(Array.from({ length: 5 }, (_, i) => ({ batch: 0, i, text: 'intact payload text' })));
    expect(((await broker.stats('corrupt')) as { errorRate: number }).errorRate).toBeGreaterThan(0);
  });

  it('corruption in an old sealed segment is found when the broker opens: CORRUPT_DATA', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    await writeBatches(dir, 2048, 16);
    const files = segments(dir);
    expect(files.length).toBeGreaterThan(1);
    flipByteInMiddleBatch(files[0]);
    expect(await codeOf(Broker.open({ dataDir: dir }))).toBe('CORRUPT_DATA');
  });

  it('corruption found by recovery in the active segment fails the open with CORRUPT_DATA', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    await writeBatches(dir, 1024 * 1024, 3);
    const files = segments(dir);
    expect(files.length).toBe(1);
    flipByteInMiddleBatch(files[0]);
    expect(await codeOf(Broker.open({ dataDir: dir }))).toBe('CORRUPT_DATA');
  });
});
