// Idempotent consumer with processed ids kept in Wharf itself (a topic): duplicates are skipped, a
// store reopened on a restarted broker remembers what was processed before, and instances open at the
// same time (members of one group in two processes) see each other's records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/index.js';
import { connect } from '../../src/client/index.js';
import { BrokerProcessedStore, idempotent } from '../../src/patterns/index.js';
import { DEFAULT_CONFIG, startServer } from '../../src/server/index.js';

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

  it('a record written by another open instance is seen: the redelivery to another member is skipped', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      const runs: string[] = [];
      const a = await BrokerProcessedStore.open(broker, { topic: 'billing.processed', consumer: 'billing' });
      const b = await BrokerProcessedStore.open(broker, { topic: 'billing.processed', consumer: 'billing' });
      const handleA = idempotent(a, (m: { id: string }) => void runs.push(`A:${m.id}`));
      const handleB = idempotent(b, (m: { id: string }) => void runs.push(`B:${m.id}`));
      await handleA({ id: 'm1' }); // member A processes and records m1, then dies before its offset commit
      await handleB({ id: 'm1' }); // member B gets the partition and m1 again
      expect(runs).toEqual(['A:m1']);
      await handleB({ id: 'm2' });
      expect(await a.has('m2')).toBe(true);
      await handleA({ id: 'm2' });
      expect(runs).toEqual(['A:m1', 'B:m2']);
      await Promise.all([a.close(), b.close()]);
    } finally {
      await broker.close();
    }
  });

  it('an instance in another process (a remote client) waits for the record written just before its check', async () => {
    const server = await startServer({
      ...DEFAULT_CONFIG,
      inMemory: true,
      port: 0,
      httpPort: 0,
      maxBodyBytes: 4 * 1024 * 1024,
      logLevel: 'silent',
    });
    const remote = await connect(server.nativeUrl);
    try {
      const runs: string[] = [];
      const here = await BrokerProcessedStore.open(server.broker, { topic: 'p', consumer: 'billing' });
      const there = await BrokerProcessedStore.open(remote, { topic: 'p', consumer: 'billing' });
      const handleHere = idempotent(here, (m: { id: string }) => void runs.push(`here:${m.id}`));
      const handleThere = idempotent(there, (m: { id: string }) => void runs.push(`there:${m.id}`));
      for (let i = 0; i < 20; i++) {
        // No pause between the record and the check: the remote reader has not received it yet.
        await handleHere({ id: `h${i}` });
        await handleThere({ id: `h${i}` });
        await handleThere({ id: `t${i}` });
        await handleHere({ id: `t${i}` });
      }
      expect(runs).toEqual(Array.from({ length: 20 }, (_, i) => [`here:h${i}`, `there:t${i}`]).flat());
      await Promise.all([here.close(), there.close()]);
    } finally {
      await remote.close();
      await server.close();
    }
  });

  it('keeps at most maxKeys keys, also of records it follows', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      const small = await BrokerProcessedStore.open(broker, { topic: 'p', maxKeys: 2 });
      const writer = await BrokerProcessedStore.open(broker, { topic: 'p' });
      for (const key of ['k1', 'k2', 'k3']) await writer.runOnce(key, () => undefined);
      expect(await small.has('k3')).toBe(true);
      expect(await small.has('k2')).toBe(true);
      expect(await small.has('k1')).toBe(false); // the oldest, forgotten
    } finally {
      await broker.close();
    }
  });

  it('a key not in memory is refused, never run, once the store cannot read its records', async () => {
    const broker = await Broker.open({ inMemory: true });
    try {
      const runs: string[] = [];
      const store = await BrokerProcessedStore.open(broker, { topic: 'p' });
      const handle = idempotent(store, (m: { id: string }) => void runs.push(m.id));
      await handle({ id: 'm1' });
      await store.close();
      await handle({ id: 'm1' }); // known: still skipped
      await expect(handle({ id: 'm2' })).rejects.toMatchObject({ code: 'CLOSED' });

      const other = await BrokerProcessedStore.open(broker, { topic: 'q' });
      await broker.deleteTopic('q');
      await expect(idempotent(other, (m: { id: string }) => void runs.push(m.id))({ id: 'm3' })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      expect(runs).toEqual(['m1']);
    } finally {
      await broker.close();
    }
  });
});
