// dedupId across SIGKILL: a child publishes with dedupIds to a topic and a queue and is killed at a
// random moment; after reopen, republishing every dedupId it tried stores nothing twice, and each
// topic repeat resolves with the partition and offset the child was told.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { runKilledChild } from './killed-child.js';

const CHILD = fileURLToPath(new URL('./transaction-dedup-child.ts', import.meta.url));

async function runOnce(
  dataDir: string,
  killAfterMs: number,
): Promise<{ started: number; resolved: Map<number, [number, number]> }> {
  const resolved = new Map<number, [number, number]>();
  let started = -1;
  await runKilledChild(CHILD, [dataDir], killAfterMs, ([k, a, b, c]) => {
    if (k === 'S') started = Number(a);
    else if (k === 'P') resolved.set(Number(a), [Number(b), Number(c)]);
  });
  return { started, resolved };
}

describe('dedupId across SIGKILL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-dedup-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('republishing after a crash stores each dedupId once and returns the original position', async () => {
    let broker = await Broker.open({ dataDir: dir });
    await broker.createTopic('t', { partitions: 3 });
    await broker.createQueue('q');
    await broker.close();

    const { started, resolved } = await runOnce(dir, 300 + Math.floor(Math.random() * 400));
    expect(resolved.size).toBeGreaterThan(5);

    broker = await Broker.open({ dataDir: dir });
    try {
      for (let n = 0; n <= started; n++) {
        const [t] = await Promise.all([
          broker.publish('t', { key: `k${n}`, dedupId: `d${n}`, payload: n }),
          broker.publish('q', { dedupId: `d${n}`, payload: n }),
        ]);
        const told = resolved.get(n);
        if (told !== undefined) expect([t.partition, t.offset, t.duplicate]).toEqual([...told, true]);
      }
      const s = await broker.stats('t');
      expect(s.kind === 'topic' && s.partitions.reduce((x, p) => x + p.endOffset, 0)).toBe(started + 1);
      const seen = new Map<number, number>();
      for (;;) {
        const batch = await broker.receive('q', { max: 1000 });
        if (batch.length === 0) break;
        for (const m of batch) seen.set(m.payload as number, (seen.get(m.payload as number) ?? 0) + 1);
      }
      expect(seen.size).toBe(started + 1);
      expect([...seen.values()].every((c) => c === 1)).toBe(true);
    } finally {
      await broker.close();
    }
  });
});
