// Transactions (acks, publishes and offset commits, all or none) behave the same embedded and over
// the native protocol (TRANSACTION, version 7; offset commits fenced by a grant, version 8).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { QueueMessage, Subscription, TopicMessage, Transaction } from '../../src/broker/index.js';
import type { WharfError } from '../../src/common/index.js';
import { IntentJournal } from '../../src/broker/exchanges/intent-journal.js';
import { factories, waitFor, type Target } from './factories.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** For members that must not expire during a test. */
const SAFE_SESSION = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000 };

describe.each(factories)('transactions contract (%s)', (_name, make) => {
  let t: Target;
  beforeEach(async () => {
    t = await make();
    await t.wharf.createQueue('in', { visibilityTimeoutMs: 60_000 });
    await t.wharf.createQueue('out');
    await t.wharf.createTopic('events', { partitions: 1 });
    await t.wharf.createTopic('src', { partitions: 2 });
  });
  afterEach(async () => {
    await t.close();
  });

  async function depth(queue: string): Promise<number> {
    const s = await t.wharf.stats(queue);
    return s.kind === 'queue' ? s.depth + s.inFlight : -1;
  }
  async function topicEnd(topic: string): Promise<number> {
    const s = await t.wharf.stats(topic);
    return s.kind === 'topic' ? s.partitions.reduce((n, p) => n + p.endOffset, 0) : -1;
  }
  async function committed(topic: string, group: string, partition: number): Promise<number | undefined> {
    const s = await t.wharf.stats(topic);
    return s.kind === 'topic'
      ? s.groups[group]?.partitions.find((p) => p.partition === partition)?.committed
      : undefined;
  }
  async function received(queue: string): Promise<QueueMessage[]> {
    return t.wharf.receive(queue, { max: 10 });
  }
  /** A message published to queue in, received: leased to the test. */
  async function leasedInput(): Promise<QueueMessage> {
    await t.wharf.publish('in', { type: 'order' });
    const [input] = await t.wharf.receive('in');
    return input;
  }

  it('commit: the ack, the publishes (topic, queue, exchange) and the offset commit all apply', async () => {
    await t.wharf.createQueue('fanned');
    await t.wharf.createExchange('fan', { type: 'fanout' });
    await t.wharf.bind('fan', { queue: 'fanned' });
    const input = await leasedInput();
    const value = await t.wharf.transaction(async (tx) => {
      await tx.ack(input);
      await tx.publish('out', { type: 'shipment', payload: { n: 1 }, headers: { trace: 'x' } });
      await tx.publish('events', [{ type: 'e1' }, { type: 'e2' }]);
      await tx.publish('fan', { type: 'fanned' });
      await tx.commitOffset({ topic: 'src', group: 'g', partition: 1, offset: 7 });
      return 'done';
    });
    expect(value).toBe('done');
    expect(await depth('in')).toBe(0);
    const [out] = await received('out');
    expect(out).toMatchObject({ type: 'shipment', payload: { n: 1 }, headers: { trace: 'x' } });
    expect((await received('fanned')).map((m) => m.type)).toEqual(['fanned']);
    expect(await topicEnd('events')).toBe(2);
    expect(await committed('src', 'g', 1)).toBe(7);
    await expect(input.ack()).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
  });

  it('abort: a callback that throws sends and applies nothing; the lease is still the caller’s', async () => {
    const input = await leasedInput();
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('out', { type: 'shipment' });
        await tx.publish('events', { type: 'e' });
        await tx.commitOffset({ topic: 'src', group: 'g', partition: 0, offset: 3 });
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await depth('out')).toBe(0);
    expect(await topicEnd('events')).toBe(0);
    expect(await committed('src', 'g', 0)).toBeUndefined();
    await input.ack();
    expect(await depth('in')).toBe(0);
  });

  it('outputs are invisible until commit (read committed)', async () => {
    let seenInside = -1;
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', { type: 'x' });
      seenInside = (await t.wharf.receive('out')).length;
    });
    expect(seenInside).toBe(0);
    expect((await received('out')).length).toBe(1);
  });

  it('byte payloads, keys and ids pass through a transaction as through a publish', async () => {
    const bytes = new Uint8Array([0, 1, 2, 255]);
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', { id: 'own-id', key: 'k', payload: bytes });
    });
    const [m] = await received('out');
    expect(m.id).toBe('own-id');
    expect(m.key).toBe('k');
    expect([...(m.payload as Uint8Array)]).toEqual([0, 1, 2, 255]);
  });

  it('a stale receipt fails the whole transaction before anything is written', async () => {
    const input = await leasedInput();
    await input.ack();
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.publish('out', { type: 'shipment' });
        await tx.ack(input);
      }),
    ).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
    expect(await depth('out')).toBe(0);
  });

  it('two transactions acking the same delivery: one commits, the other is refused', async () => {
    const input = await leasedInput();
    const run = (type: string): Promise<void> =>
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('out', { type });
      });
    const [first, second] = await Promise.allSettled([run('first'), run('second')]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({ status: 'rejected', reason: { code: 'RECEIPT_INVALID' } });
    expect((await received('out')).map((m) => m.type)).toEqual(['first']);
    await expect(run('third')).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
  });

  it('a commit that fails releases its receipts for the next transaction', async () => {
    const input = await leasedInput();
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('missing', { type: 'x' });
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await t.wharf.transaction(async (tx) => {
      await tx.ack(input);
      await tx.publish('out', { type: 'shipment' });
    });
    expect(await depth('in')).toBe(0);
    expect(await depth('out')).toBe(1);
  });

  it('a target that would refuse (QUEUE_FULL), does not exist, or an offset outside the topic fails it all', async () => {
    await t.wharf.createQueue('tiny', { maxLength: 1, overflow: 'reject' });
    await t.wharf.publish('tiny', { type: 'filler' });
    const input = await leasedInput();
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.publish('out', { type: 'shipment' });
        await tx.publish('tiny', { type: 'overflow' });
      }),
    ).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(input);
        await tx.commitOffset({ topic: 'src', group: 'g', partition: 9, offset: 1 });
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await depth('out')).toBe(0);
    expect(await depth('tiny')).toBe(1);
    await input.ack();
  });

  it('misuse fails as embedded: tx after its callback, a non-message ack, too many operations', async () => {
    let leaked: Transaction | null = null;
    await t.wharf.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked!.publish('out', { type: 'late' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack({ queue: 'in' } as QueueMessage);
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.publish(
          'out',
          Array.from({ length: 10_001 }, (_, i) => ({ payload: i })),
        );
      }),
    ).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    await expect(t.wharf.transaction('nope' as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await depth('out')).toBe(0);
  });

  it('a consume handler acks its input inside a transaction (consume-transform-produce)', async () => {
    await t.wharf.publish('in', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    let committedCount = 0;
    const consumer = await t.wharf.consume('in', { concurrency: 2 }, async (m) => {
      await t.wharf.transaction(async (tx) => {
        await tx.ack(m);
        await tx.publish('out', { payload: (m.payload as number) * 10 });
      });
      committedCount++;
    });
    await waitFor(() => committedCount === 3);
    await consumer.close();
    expect(await depth('in')).toBe(0);
    expect((await received('out')).map((m) => m.payload as number).sort((a, b) => a - b)).toEqual([10, 20, 30]);
  });

  it('an idempotent producer’s sequence in a transaction is stored once, in or out of one', async () => {
    const message = { producerId: 'p-1', sequence: 0, payload: 'once' };
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', message);
    });
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', message);
    });
    await t.wharf.publish('out', message);
    expect(await depth('out')).toBe(1);
  });

  it('two deliveries that share an id are both acked: an ack is named by its receipt', async () => {
    await t.wharf.publish('in', [
      { id: 'same', payload: 1 },
      { id: 'same', payload: 2 },
    ]);
    const both = await t.wharf.receive('in', { max: 2 });
    expect(both.map((m) => m.id)).toEqual(['same', 'same']);
    await t.wharf.transaction(async (tx) => {
      for (const m of both) await tx.ack(m);
      await tx.publish('out', { payload: 'done' });
    });
    expect(await depth('in')).toBe(0);
    expect(await depth('out')).toBe(1);
  });

  it('an empty publish stores nothing but needs its target, as outside a transaction', async () => {
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.publish('missing', []);
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await t.wharf.transaction(async (tx) => {
      await tx.publish('out', []);
      await tx.publish('out', { payload: 'one' });
    });
    expect(await depth('out')).toBe(1);
  });

  it('an offset commit with a missing or wrongly typed field is INVALID_ARGUMENT, and nothing applies', async () => {
    const bad: unknown[] = [
      { group: 'g', partition: 0, offset: 1 },
      { topic: 'src', partition: 0, offset: 1 },
      { topic: 'src', group: 'g', partition: -1, offset: 1 },
      { topic: 'src', group: 'g', partition: 0, offset: 1.5 },
      { topic: 'src', group: 'g', partition: '0', offset: 1 },
      { topic: 'src', group: 'g', partition: 0, offset: 1, grant: { memberId: 'm' } },
      { topic: 'src', group: 'g', partition: 0, offset: 1, grant: { memberId: '', assignmentEpoch: 1 } },
      { topic: 'src', group: 'g', partition: 0, offset: 1, grant: { memberId: 'm', assignmentEpoch: -1 } },
      null,
    ];
    for (const commit of bad) {
      await expect(
        t.wharf.transaction(async (tx) => {
          await tx.publish('out', { payload: 'x' });
          await tx.commitOffset(commit as never);
        }),
        JSON.stringify(commit),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await depth('out')).toBe(0);
    expect(await committed('src', 'g', 0)).toBeUndefined();
  });

  it('an empty transaction resolves with its value and changes nothing', async () => {
    expect(await t.wharf.transaction(async () => 42)).toBe(42);
    expect(await depth('out')).toBe(0);
  });

  // ---------------------------------------------------------------- fenced offset commits (per grant)

  /** Subscribes to `topic` in group g from the start, keeping every message delivered, by partition. */
  async function member(topic: string, seen: Map<number, TopicMessage[]>): Promise<Subscription> {
    return t.wharf.subscribe(topic, { group: 'g', from: 'earliest', ...SAFE_SESSION }, (m) => {
      let list = seen.get(m.partition);
      if (list === undefined) seen.set(m.partition, (list = []));
      list.push(m);
    });
  }
  /** One transaction that consumed `m`: its output, and the commit of its offset under its grant. */
  function processOnce(m: TopicMessage): Promise<void> {
    return t.wharf.transaction(async (tx) => {
      await tx.publish('out', { payload: `from ${m.partition}:${m.offset}` });
      await tx.commitOffset(m);
    });
  }

  it('a group message carries its grant; committing it under the current grant applies offset + 1 with the outputs', async () => {
    await t.wharf.publish('events', [{ payload: 'a' }, { payload: 'b' }]);
    const seen = new Map<number, TopicMessage[]>();
    const sub = await member('events', seen);
    await waitFor(() => (seen.get(0)?.length ?? 0) === 2);
    const [first, second] = seen.get(0)!;
    expect(first.grant).toEqual({ group: 'g', memberId: sub.memberId, assignmentEpoch: expect.any(Number) });
    expect(second.grant).toEqual(first.grant);
    await sub.close(); // the group's own commit is at 2 now; move it back so the transaction's shows
    await t.wharf.transaction(async (tx) => {
      await tx.commitOffset({ topic: 'events', group: 'g', partition: 0, offset: 0 }); // administrative: no grant
    });
    expect(await committed('events', 'g', 0)).toBe(0);
    const again = new Map<number, TopicMessage[]>();
    const sub2 = await member('events', again);
    await waitFor(() => (again.get(0)?.length ?? 0) === 2);
    await processOnce(again.get(0)![0]);
    expect(await committed('events', 'g', 0)).toBe(1);
    expect((await received('out')).map((m) => m.payload)).toEqual(['from 0:0']);
    await sub2.close();
  });

  it('after its partition moved to another member, a message’s commit fails with CONFLICT and nothing of it applies', async () => {
    await t.wharf.publish('src', [
      { partition: 0, payload: 0 },
      { partition: 1, payload: 1 },
    ]);
    const seenA = new Map<number, TopicMessage[]>();
    const a = await member('src', seenA);
    await waitFor(() => seenA.get(0)?.length === 1 && seenA.get(1)?.length === 1);
    const b = await member('src', new Map());
    expect(b.assignments()).toHaveLength(1);
    const [moved] = b.assignments();
    const kept = 1 - moved;
    const before = await committed('src', 'g', moved);
    await expect(
      t.wharf.transaction(async (tx) => {
        await tx.ack(await leasedInput());
        await tx.publish('out', { payload: 'zombie output' });
        await tx.commitOffset(seenA.get(moved)![0]);
      }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(new RegExp(`partition ${moved} of topic "src" was reassigned in group "g"`)),
    });
    expect(await depth('out')).toBe(0);
    expect(await depth('in')).toBe(1); // the ack did not apply either: the lease is still held
    expect(await committed('src', 'g', moved)).toBe(before);
    // The partition a kept is still a's under the same grant: its message commits.
    await processOnce(seenA.get(kept)![0]);
    expect((await received('out')).map((m) => m.payload)).toEqual([`from ${kept}:0`]);
    await b.close();
    await a.close();
  });

  it('after a seek grants the partition to the same member again, a message of the earlier grant cannot commit', async () => {
    await t.wharf.publish('events', { payload: 'x' });
    const seen = new Map<number, TopicMessage[]>();
    const sub = await member('events', seen);
    await waitFor(() => seen.get(0)?.length === 1);
    await sub.seek('earliest'); // every partition revoked and granted again, to the same member
    await waitFor(() => seen.get(0)?.length === 2);
    const [old, replayed] = seen.get(0)!;
    expect(replayed.grant!.memberId).toBe(old.grant!.memberId);
    expect(replayed.grant!.assignmentEpoch).not.toBe(old.grant!.assignmentEpoch);
    await expect(processOnce(old)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await depth('out')).toBe(0);
    await processOnce(replayed);
    expect(await depth('out')).toBe(1);
    expect(await committed('events', 'g', 0)).toBe(1);
    await sub.close();
  });

  it('with maxInFlight 2, a message’s commit is CONFLICT while an earlier one is unsettled; its retry commits once that one settled', async () => {
    await t.wharf.publish('events', [{ payload: 'a' }, { payload: 'b' }]);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const refused: string[] = [];
    const processed: number[] = [];
    const sub = await t.wharf.subscribe(
      'events',
      { group: 'g', from: 'earliest', maxInFlight: 2, ...SAFE_SESSION },
      async (m) => {
        if (m.offset === 0) await held; // message 1 is handed out meanwhile
        try {
          await processOnce(m);
        } catch (err) {
          refused.push(`${(err as WharfError).code} ${(err as WharfError).message}`);
          throw err; // retried with backoff
        }
        processed.push(m.offset);
      },
    );
    try {
      await waitFor(() => refused.length > 0);
      expect(refused[0]).toMatch(/^CONFLICT offset 0 of partition 0 of topic "events" is still being handled/);
      expect(await committed('events', 'g', 0)).toBe(0);
      expect(await depth('out')).toBe(0);
      release();
      await waitFor(() => processed.length === 2);
      expect(processed).toEqual([0, 1]);
      expect(await committed('events', 'g', 0)).toBe(2);
      expect((await received('out')).map((m) => m.payload)).toEqual(['from 0:0', 'from 0:1']);
    } finally {
      release();
      await sub.close();
    }
  });

  it.each([1, 2])(
    'maxInFlight %i: a handler that throws after its transaction committed its message’s offset is not retried; the throw is counted',
    async (maxInFlight) => {
      await t.wharf.publish('events', [{ payload: 'a' }, { payload: 'b' }]);
      const attempts: number[] = [];
      const processed = new Set<number>();
      const sub = await t.wharf.subscribe(
        'events',
        { group: 'g', from: 'earliest', maxInFlight, ...SAFE_SESSION },
        async (m) => {
          attempts.push(m.offset);
          await processOnce(m);
          processed.add(m.offset);
          if (m.offset === 0) throw new Error('failed after its transaction committed');
        },
      );
      try {
        await waitFor(() => processed.size === 2);
        await sleep(100); // room for a retry (its backoff starts at 10 ms)
        // Message 0 ran once. (With maxInFlight 2, message 1's transaction may have been CONFLICT
        // while message 0 was unsettled, and message 1 retried: that is not what is tested here.)
        expect(attempts.filter((o) => o === 0)).toHaveLength(1);
        // The transaction's effects happened once: the message was consumed by it, as in Kafka.
        expect((await received('out')).map((m) => m.payload)).toEqual(['from 0:0', 'from 0:1']);
        expect(await committed('events', 'g', 0)).toBe(2);
        const s = await t.wharf.stats('events');
        expect(s.kind === 'topic' && s.errorRate).toBeGreaterThan(0);
      } finally {
        await sub.close();
      }
    },
  );

  it('a message of a reader without a group has no grant: committing it is INVALID_ARGUMENT; a made-up grant is CONFLICT', async () => {
    await t.wharf.publish('events', { payload: 'x' });
    const seen: TopicMessage[] = [];
    const reader = await t.wharf.subscribe('events', { from: 'earliest' }, (m) => void seen.push(m));
    await waitFor(() => seen.length === 1);
    expect(seen[0].grant).toBeUndefined();
    await expect(processOnce(seen[0])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/no grant.*reader without a consumer group/),
    });
    // A grant no member holds: a group nobody joined, and a member the group does not have.
    for (const group of ['nobody', 'g']) {
      if (group === 'g') await member('events', new Map()).then((s) => s.close());
      await expect(
        t.wharf.transaction(async (tx) => {
          await tx.publish('out', { payload: 'y' });
          await tx.commitOffset({
            topic: 'events',
            group,
            partition: 0,
            offset: 1,
            grant: { memberId: 'made-up', assignmentEpoch: 1 },
          });
        }),
      ).rejects.toMatchObject({ code: 'CONFLICT' });
    }
    expect(await depth('out')).toBe(0);
    await reader.close();
  });

  it('a rebalance while a fenced commit is being written waits for it: the new owner starts after that commit', async () => {
    await t.wharf.createTopic('gap', { partitions: 2 });
    await t.wharf.publish('gap', [
      { partition: 0, payload: 0 },
      { partition: 1, payload: 1 },
    ]);
    // Every intent (the transaction's durable write) waits at the gate: a slow disk.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const run = IntentJournal.prototype.run;
    const writes = vi.spyOn(IntentJournal.prototype, 'run').mockImplementation(function (this: IntentJournal, intent) {
      return gate.then(() => run.call(this, intent));
    });
    try {
      const handled: string[] = [];
      const handler = (who: string) => async (m: TopicMessage) => {
        handled.push(`${who} ${m.partition}:${m.offset}`);
        await processOnce(m);
      };
      // a's handlers are inside their transactions for longer than a's session timeout ...
      const a = await t.wharf.subscribe(
        'gap',
        { group: 'g', from: 'earliest', sessionTimeoutMs: 300, heartbeatIntervalMs: 50 },
        handler('a'),
      );
      await waitFor(() => writes.mock.calls.length === 2);
      // ... when b joins: the revoke of the partition that moves to b gives up after 300 ms, and
      // the partition is b's only once a's commit of it has been written.
      let bJoined = false;
      const joining = t.wharf
        .subscribe('gap', { group: 'g', from: 'earliest', ...SAFE_SESSION }, handler('b'))
        .then((s) => {
          bJoined = true;
          return s;
        });
      await sleep(1000);
      expect(bJoined).toBe(false);
      open();
      const b = await joining;
      expect(b.assignments()).toHaveLength(1);
      await waitFor(() => handled.length === 2 && writes.mock.results.length === 2);
      await sleep(100); // room for a wrong redelivery to b
      expect(handled.sort()).toEqual(['a 0:0', 'a 1:0']);
      expect(await depth('out')).toBe(2);
      expect([await committed('gap', 'g', 0), await committed('gap', 'g', 1)]).toEqual([1, 1]);
      await b.close();
      await a.close();
    } finally {
      open();
      writes.mockRestore();
    }
  });
});
