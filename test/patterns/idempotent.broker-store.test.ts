// Idempotent consumer with processed ids kept in Wharf itself (a topic): duplicates are skipped, and a
// store reopened on a restarted broker remembers what was processed before.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { BrokerProcessedStore, idempotent } from '../../src/patterns/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('idempotent consumer (broker store)', () => {
  it('skips redeliveries and remembers processed ids across a broker restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wharf-idem-broker-'));
    dirs.push(dataDir);
    const runs: string[] = [];
    const handler = (m: { id: string }) => void runs.push(m.id);

    let broker = await Broker.open({ dataDir });
    let store = await BrokerProcessedStore.open(broker, { topic: 'billing.processed', consumer: 'billing' });
    let handle = idempotent(store, handler);
    await handle({ id: 'm1' });
    await handle({ id: 'm1' });
    await Promise.all([handle({ id: 'm2' }), handle({ id: 'm2' })]);
    expect(runs).toEqual(['m1', 'm2']);
    // Another consumer on the same topic keeps its own record.
    const other = await BrokerProcessedStore.open(broker, { topic: 'billing.processed', consumer: 'audit' });
    expect(await other.has('m1')).toBe(false);
    await broker.close();

    broker = await Broker.open({ dataDir });
    try {
      store = await BrokerProcessedStore.open(broker, { topic: 'billing.processed', consumer: 'billing' });
      handle = idempotent(store, handler);
      expect(await store.has('m1')).toBe(true);
      await handle({ id: 'm1' });
      await handle({ id: 'm3' });
      expect(runs).toEqual(['m1', 'm2', 'm3']);
    } finally {
      await broker.close();
    }
  });

  it('a handler that throws records nothing, so the retry runs it', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      const store = await BrokerProcessedStore.open(broker, { topic: 'p' });
      let attempts = 0;
      const handle = idempotent(store, () => {
        if (++attempts === 1) throw new Error('boom');
      });
      await expect(handle({ id: 'x' })).rejects.toThrow('boom');
      await handle({ id: 'x' });
      await handle({ id: 'x' });
      expect(attempts).toBe(2);
    } finally {
      await broker.close();
    }
  });
});
