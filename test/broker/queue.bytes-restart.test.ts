// A queue's bytes (payload + headers + key of its unsettled messages, what maxBytes counts) are the
// same after a restart: they are counted again from the records, not scaled from the log's size,
// which holds the batches' framing too (about twice the bytes of small messages).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-queue-bytes-'));
  dirs.push(dir);
  return dir;
}

const bytesOf = async (b: Broker, q: string): Promise<number> => {
  const s = await b.stats(q);
  if (s.kind !== 'queue') throw new Error(`${q} is not a queue`);
  return s.bytes;
};

it('a queue reports the same bytes, and accepts the same publish, before and after a clean restart', async () => {
  const dir = tempDir();
  let b = await Broker.open({ dataDir: dir });
  await b.createQueue('q', { maxBytes: 130 });
  await b.publish('q', [{ payload: 1 }, { payload: 2 }]);
  const before = await bytesOf(b, 'q');
  await b.close();
  b = await Broker.open({ dataDir: dir });
  try {
    expect(await bytesOf(b, 'q')).toBe(before);
    await b.publish('q', { payload: 3 }); // 3 x 42 = 126 <= 130, as without the restart
    expect(await bytesOf(b, 'q')).toBe(126);
  } finally {
    await b.close();
  }
});

it('settled, delayed and prioritised messages are counted as they were, and a large backlog is estimated close to its bytes', async () => {
  const dir = tempDir();
  let b = await Broker.open({ dataDir: dir });
  await b.createQueue('p', { priorities: 2 });
  await b.publish('p', [
    { payload: 'a'.repeat(100), priority: 1 },
    { payload: 'b'.repeat(200) },
    { payload: 'c'.repeat(300), delayMs: 60_000 },
    { payload: 'd'.repeat(400) },
  ]);
  const [first] = await b.receive('p'); // the priority-1 message
  await first.ack();
  await b.createQueue('big');
  for (let i = 0; i < 12; i++)
    await b.publish(
      'big',
      Array.from({ length: 500 }, (_, k) => ({ payload: 'x'.repeat(1000 + ((i * 500 + k) % 7)) })),
    ); // about 6 MB: more than an open reads exactly (1 MiB per level)
  const before = { p: await bytesOf(b, 'p'), big: await bytesOf(b, 'big') };
  await b.close();
  b = await Broker.open({ dataDir: dir });
  try {
    expect(await bytesOf(b, 'p')).toBe(before.p);
    const big = await bytesOf(b, 'big');
    expect(Math.abs(big - before.big) / before.big).toBeLessThan(0.01);
  } finally {
    await b.close();
  }
});
