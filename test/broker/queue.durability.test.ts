// Durable state: acks, nacks, delivery counts and dead letters survive restarts; leases in flight
// become visible again; recovery reads a snapshot; settled segments are deleted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestBroker, qstats, type TestBroker } from './queue-helpers.js';

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    const s = statSync(p);
    n += s.isDirectory() ? dirBytes(p) : s.size;
  }
  return n;
}

describe('queue durability', () => {
  let t: TestBroker;
  beforeEach(async () => {
    t = await openTestBroker({ disk: true, fsync: 'always' });
  });
  afterEach(() => t.cleanup());

  it('after a restart no acked message is delivered again and every unacked one is', async () => {
    await t.broker.createQueue('q', { visibilityTimeoutMs: 60_000 });
    await t.broker.publish(
      'q',
      Array.from({ length: 10 }, (_, i) => ({ payload: i })),
    );
    const got = await t.broker.receive('q', { max: 6 });
    for (const m of got.filter((m) => (m.payload as number) % 2 === 0)) await m.ack(); // 0 2 4 acked; 1 3 5 in flight
    await t.restart();
    const after = await t.broker.receive('q', { max: 20 });
    expect(after.map((m) => m.payload).sort()).toEqual([1, 3, 5, 6, 7, 8, 9]);
    const counts = Object.fromEntries(after.map((m) => [m.payload as number, m.deliveryCount]));
    expect(counts).toEqual({ 1: 2, 3: 2, 5: 2, 6: 1, 7: 1, 8: 1, 9: 1 });
  });

  it('a receipt from before a restart is invalid afterwards', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', { payload: 1 });
    const [m] = await t.broker.receive('q');
    await t.restart();
    await expect(t.broker.ackReceipt('q', m.receipt)).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
  });

  it('nack delays and delivery counts survive a restart', async () => {
    await t.broker.createQueue('q', { retry: { initialDelayMs: 1000, jitter: 0 } });
    await t.broker.publish('q', { payload: 'n' });
    const [m] = await t.broker.receive('q');
    await m.nack();
    await t.restart();
    expect(await t.broker.receive('q')).toEqual([]);
    t.clock.advance(1000);
    const [again] = await t.broker.receive('q');
    expect(again.deliveryCount).toBe(2);
  });

  it('dead-lettering is durable: the message is in the DLQ, not the source, after a restart', async () => {
    await t.broker.createQueue('q.dlq');
    await t.broker.createQueue('q', { deadLetterQueue: 'q.dlq', maxDeliveries: 1 });
    await t.broker.publish('q', { payload: 'p' });
    const [m] = await t.broker.receive('q');
    await m.nack({ error: 'e' });
    await t.restart();
    expect(await t.broker.receive('q')).toEqual([]);
    expect((await t.broker.receive('q.dlq')).map((x) => x.payload)).toEqual(['p']);
  });

  it('recovers from a snapshot plus journal tail, and deletes fully settled segments', async () => {
    await t.broker.createQueue('q', { segmentBytes: 16 * 1024 });
    const payload = 'x'.repeat(1000);
    for (let i = 0; i < 10; i++)
      await t.broker.publish(
        'q',
        Array.from({ length: 20 }, (_, j) => ({ payload: { i, j, payload } })),
      );
    const before = dirBytes(join(t.dir!, 'queues', 'q'));
    let acked = 0;
    for (;;) {
      const batch = await t.broker.receive('q', { max: 50 });
      if (batch.length === 0) break;
      for (const m of batch) if (acked++ < 190) await m.ack();
    }
    await t.restart(); // close writes a snapshot and truncates
    const after = dirBytes(join(t.dir!, 'queues', 'q'));
    expect(after).toBeLessThan(before / 4);
    const rest = await t.broker.receive('q', { max: 50 });
    expect(rest.length).toBe(10);
    expect(rest.every((m) => m.deliveryCount === 2)).toBe(true);
    expect((await qstats(t, 'q')).inFlight).toBe(10);
  });

  it('snapshots while running once the journal is large, and a crash image after that recovers exactly', async () => {
    const tb = await openTestBroker({ disk: true, fsync: 'never' });
    try {
      await tb.broker.createQueue('big', { segmentBytes: 256 * 1024 });
      const total = 80_000; // 2 ops x 33 bytes each: past the 4 MiB snapshot threshold
      for (let i = 0; i < total; i += 5000)
        await tb.broker.publish(
          'big',
          Array.from({ length: 5000 }, (_, j) => ({ payload: i + j })),
        );
      const logBytesBefore = dirBytes(join(tb.dir!, 'queues', 'big', 'p0'));
      let acked = 0;
      const kept: number[] = [];
      for (;;) {
        const batch = await tb.broker.receive('big', { max: 1000 });
        if (batch.length === 0) break;
        for (const m of batch) {
          if ((m.payload as number) >= total - 80) kept.push(m.payload as number);
          else acked++;
        }
        await Promise.all(batch.filter((m) => (m.payload as number) < total - 80).map((m) => m.ack()));
      }
      expect(acked).toBe(total - 80);
      await new Promise((r) => setTimeout(r, 200)); // let a running snapshot and truncation finish
      // Without a snapshot the journal would hold every op (80,000 x 2 x 33 bytes, over 5 MB).
      expect(statSync(join(tb.dir!, 'queues', 'big', 'state')).size).toBeLessThan(4 * 1024 * 1024);
      // Settled segments were deleted by the snapshot taken at ~63,000 acks.
      expect(dirBytes(join(tb.dir!, 'queues', 'big', 'p0'))).toBeLessThan(logBytesBefore / 2);
      await tb.crashRestart();
      const back = await tb.broker.receive('big', { max: 1000 });
      expect(back.map((m) => m.payload as number).sort((a, b) => a - b)).toEqual(kept.sort((a, b) => a - b));
      expect(back.every((m) => m.deliveryCount === 2)).toBe(true);
    } finally {
      await tb.cleanup();
    }
  }, 60_000);
  it('a dedupId whose window ended before a restart is free again afterwards, whichever level stored it', async () => {
    await t.broker.createQueue('q', { priorities: 2, dedupWindowMs: 1000 });
    // The older message on the higher level: level 0's log is read first on open.
    await t.broker.publish('q', { payload: 'old', priority: 1, dedupId: 'x' });
    t.clock.advance(500);
    await t.broker.publish('q', { payload: 'new', priority: 0, dedupId: 'y' });
    t.clock.advance(100);
    await t.restart();
    t.clock.advance(600); // 1200 ms after 'x': its window is over; 'y' is still within its own
    const again = await t.broker.publish('q', { payload: 'again', dedupId: 'x' });
    expect(again.duplicate).toBeUndefined();
    const repeat = await t.broker.publish('q', { payload: 'repeat', dedupId: 'y' });
    expect(repeat.duplicate).toBe(true);
    const got = await t.broker.receive('q', { max: 10 });
    expect(got.map((m) => m.payload).sort()).toEqual(['again', 'new', 'old']);
  });

  it('a queue created again after a delete that a crash cut short starts empty: the old files belong to no one', async () => {
    await t.broker.createQueue('q');
    await t.broker.publish('q', [{ payload: 'old-1' }, { payload: 'old-2' }]);
    await t.broker.close();
    // The queue's files as a crash after the catalog forgot the name, before the files went, leaves them.
    const saved = mkdtempSync(join(tmpdir(), 'wharf-left-behind-'));
    try {
      cpSync(join(t.dir!, 'queues', 'q'), saved, { recursive: true });
      await t.restart();
      await t.broker.deleteQueue('q');
      await t.broker.close();
      cpSync(saved, join(t.dir!, 'queues', 'q'), { recursive: true });
      await t.restart();
      expect((await t.broker.listQueues()).map((q) => q.name)).not.toContain('q');
      await t.broker.createQueue('q');
      expect(await t.broker.receive('q', { max: 10 })).toEqual([]);
      expect((await qstats(t, 'q')).depth).toBe(0);
      await t.broker.publish('q', { payload: 'new' });
      expect((await t.broker.receive('q', { max: 10 })).map((m) => m.payload)).toEqual(['new']);
    } finally {
      rmSync(saved, { recursive: true, force: true });
    }
  });
});
