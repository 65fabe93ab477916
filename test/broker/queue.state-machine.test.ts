// Property: random publish / receive / ack / nack / lease-expiry / restart / crash sequences against a model.
// No message is lost, none is delivered after its ack, none is delivered while leased,
// and delivery counts are exact.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { QueueMessage } from '../../src/broker/index.js';
import { openTestBroker } from './queue-helpers.js';

type Cmd =
  | { k: 'publish'; n: number }
  | { k: 'receive'; max: number }
  | { k: 'ack'; pick: number }
  | { k: 'nack'; pick: number; delayMs: number }
  | { k: 'advance'; ms: number }
  | { k: 'restart' }
  | { k: 'crash' };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ k: fc.constant('publish' as const), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ k: fc.constant('receive' as const), max: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ k: fc.constant('ack' as const), pick: fc.nat() }),
  fc.record({ k: fc.constant('nack' as const), pick: fc.nat(), delayMs: fc.constantFrom(0, 500) }),
  fc.record({ k: fc.constant('advance' as const), ms: fc.constantFrom(100, 600, 1000) }),
  fc.record({ k: fc.constant('restart' as const) }),
  fc.record({ k: fc.constant('crash' as const) }),
);

interface ModelMsg {
  acked: boolean;
  deliveries: number;
  /** When it is visible (ready) again; Infinity while leased. */
  visibleAtMs: number;
  leaseEndMs: number;
}

const LEASE_MS = 1000;

describe('queue state machine (property)', () => {
  it('matches the model under random operation sequences, with restarts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 5, maxLength: 30 }), async (cmds) => {
        const t = await openTestBroker({ disk: true });
        try {
          await t.broker.createQueue('q', { visibilityTimeoutMs: LEASE_MS, retry: { initialDelayMs: 300, jitter: 0 } });
          const model = new Map<number, ModelMsg>();
          let outstanding: QueueMessage[] = [];
          let next = 0;
          const now = () => t.clock.now();
          const isReady = (m: ModelMsg) => !m.acked && m.visibleAtMs <= now() && !(m.leaseEndMs > now());
          for (const c of cmds) {
            if (c.k === 'publish') {
              const msgs = Array.from({ length: c.n }, () => ({ payload: next++ }));
              await t.broker.publish('q', msgs);
              for (const m of msgs)
                model.set(m.payload, { acked: false, deliveries: 0, visibleAtMs: 0, leaseEndMs: 0 });
            } else if (c.k === 'receive') {
              const ready = [...model.values()].filter(isReady).length;
              const got = await t.broker.receive('q', { max: c.max });
              expect(got.length).toBe(Math.min(c.max, ready));
              for (const m of got) {
                const mm = model.get(m.payload as number)!;
                expect(isReady(mm)).toBe(true); // never delivered after ack or while leased
                mm.deliveries++;
                expect(m.deliveryCount).toBe(mm.deliveries);
                mm.leaseEndMs = now() + LEASE_MS;
                outstanding.push(m);
              }
            } else if ((c.k === 'ack' || c.k === 'nack') && outstanding.length > 0) {
              const m = outstanding.splice(c.pick % outstanding.length, 1)[0];
              const mm = model.get(m.payload as number)!;
              const current = !mm.acked && mm.leaseEndMs > now() && mm.deliveries === m.deliveryCount;
              const op = c.k === 'ack' ? m.ack() : m.nack({ delayMs: c.delayMs });
              if (current) {
                await op;
                if (c.k === 'ack') mm.acked = true;
                else mm.visibleAtMs = now() + c.delayMs;
                mm.leaseEndMs = 0;
              } else {
                await expect(op).rejects.toMatchObject({ code: 'RECEIPT_INVALID' });
              }
            } else if (c.k === 'advance') {
              t.clock.advance(c.ms);
            } else if (c.k === 'restart' || c.k === 'crash') {
              await (c.k === 'restart' ? t.restart() : t.crashRestart());
              outstanding = [];
              for (const mm of model.values()) mm.leaseEndMs = 0; // leases end with the process
            }
          }
          // Drain: every unacked message comes back exactly once more; acked ones never.
          t.clock.advance(10_000);
          const drained = new Map<number, number>();
          for (;;) {
            const got = await t.broker.receive('q', { max: 100 });
            if (got.length === 0) break;
            for (const m of got) {
              drained.set(m.payload as number, m.deliveryCount);
              await m.ack();
            }
          }
          const expected = new Map<number, number>();
          for (const [id, mm] of model) if (!mm.acked) expected.set(id, mm.deliveries + 1);
          expect(new Map([...drained].sort((a, b) => a[0] - b[0]))).toEqual(
            new Map([...expected].sort((a, b) => a[0] - b[0])),
          );
        } finally {
          await t.cleanup();
        }
      }),
      { numRuns: 30 },
    );
  }, 120_000);
});
