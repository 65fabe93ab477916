// A remote reader without a group resumes after a reconnect where its handler left off, per
// partition, as a Kafka consumer keeps its fetch position: nothing published while it was away is
// skipped, and nothing its handler already got comes again. Against a server older than protocol
// version 9 (no startOffsets) it resubscribes from its `from`, as before.
import { expect, it } from 'vitest';
import { type SubscribeOptions } from '../../src/broker/index.js';
import { WharfError } from '../../src/common/index.js';
import { OP } from '../../src/protocol/index.js';
import { until } from './frame-proxy.js';
import { proxiedBroker, type ProxiedBroker as Rig } from './proxied-broker.js';
import { sleep } from '../broker/topics-helpers.js';

const openProxied = proxiedBroker();

function openRig(partitions: number, maxProtocolVersion?: number): Promise<Rig> {
  return openProxied({
    setup: async (b) => {
      await b.createTopic('t', { partitions });
    },
    server: { maxProtocolVersion },
    client: { reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 20, connectTimeoutMs: 300 },
  });
}

/** Cuts the client's connection, runs `whileAway` before it can reconnect, then waits for its resubscribe. */
async function reconnectAround(rig: Rig, whileAway: () => Promise<void>): Promise<void> {
  const { proxy } = rig;
  proxy.swallowFrom = proxy.connections; // reconnect attempts get no answer until whileAway is done
  proxy.cutAll();
  await sleep(50);
  await whileAway();
  proxy.swallowFrom = Infinity;
  await until(() => proxy.opsByConnection.some((ops, i) => i > 0 && ops.includes(OP.SUBSCRIBE)), 'resubscribe');
  await sleep(200); // the resubscribe answered, and whatever it delivers delivered
}

async function subscribeReader(rig: Rig, options: SubscribeOptions): Promise<string[]> {
  const seen: string[] = [];
  await rig.client.subscribe('t', options, (m) => void seen.push(`${m.partition}:${String(m.payload)}`));
  return seen;
}

/**
 * Subscribes a reader from 'latest', publishes m1 and waits for it, publishes m2 while the reader is
 * away, then m3 once it is back; returns what it was handed once m3 came and a duplicate had time to.
 */
async function latestReaderAcrossReconnect(rig: Rig): Promise<string[]> {
  const seen = await subscribeReader(rig, { from: 'latest' });
  await rig.broker.publish('t', { payload: 'm1' });
  await until(() => seen.includes('0:m1'), 'm1');
  await reconnectAround(rig, () => rig.broker.publish('t', { payload: 'm2' }).then(() => undefined));
  await rig.broker.publish('t', { payload: 'm3' });
  await until(() => seen.includes('0:m3'), 'm3');
  await sleep(100);
  return seen;
}

it("a reader from 'latest' gets what was published while it was disconnected, and nothing twice", async () => {
  const rig = await openRig(1);
  await rig.broker.publish('t', { payload: 'before' });
  const seen = await latestReaderAcrossReconnect(rig);
  expect(seen).toEqual(['0:m1', '0:m2', '0:m3']);
});

it("a reader from 'earliest' continues after the last message it handled, not from the topic's start", async () => {
  const rig = await openRig(1);
  await rig.broker.publish('t', [{ payload: 'a' }, { payload: 'b' }]);
  const seen = await subscribeReader(rig, { from: 'earliest' });
  await until(() => seen.length === 2, 'a and b');
  await reconnectAround(rig, () => rig.broker.publish('t', { payload: 'c' }).then(() => undefined));
  await rig.broker.publish('t', { payload: 'd' });
  await until(() => seen.includes('0:d'), 'd');
  await sleep(100);
  expect(seen).toEqual(['0:a', '0:b', '0:c', '0:d']);
});

it("each partition resumes on its own; one that had delivered nothing resumes at the end as of the subscribe ('latest')", async () => {
  const rig = await openRig(3);
  await rig.broker.publish(
    't',
    [0, 1, 2].map((partition) => ({ partition, payload: 'old' })),
  );
  const seen = await subscribeReader(rig, { from: 'latest', maxInFlight: 4 });
  // Partition 0 hands three messages, partition 1 one, partition 2 none before the cut.
  await rig.broker.publish('t', [
    { partition: 0, payload: 'x1' },
    { partition: 0, payload: 'x2' },
    { partition: 0, payload: 'x3' },
    { partition: 1, payload: 'y1' },
  ]);
  await until(() => seen.length === 4, 'x1..x3 and y1');
  await reconnectAround(rig, () =>
    rig.broker
      .publish('t', [
        { partition: 0, payload: 'x4' },
        { partition: 1, payload: 'y2' },
        { partition: 2, payload: 'z1' },
      ])
      .then(() => undefined),
  );
  await rig.broker.publish(
    't',
    [0, 1, 2].map((partition) => ({ partition, payload: 'after' })),
  );
  await until(() => seen.length === 10, 'every message');
  await sleep(100);
  const byPartition = (p: number): string[] => seen.filter((s) => s.startsWith(`${p}:`));
  expect(byPartition(0)).toEqual(['0:x1', '0:x2', '0:x3', '0:x4', '0:after']);
  expect(byPartition(1)).toEqual(['1:y1', '1:y2', '1:after']);
  expect(byPartition(2)).toEqual(['2:z1', '2:after']);
});

it('a reader resumes after a seek from where the seek moved it, not from its original `from`', async () => {
  const rig = await openRig(1);
  await rig.broker.publish('t', [{ payload: 'a' }, { payload: 'b' }]);
  const seen: string[] = [];
  const sub = await rig.client.subscribe('t', { from: 'earliest' }, (m) => void seen.push(String(m.payload)));
  await until(() => seen.length === 2, 'a and b');
  await sub.seek({ offset: 1 });
  await until(() => seen.length === 3, 'b again');
  await reconnectAround(rig, () => rig.broker.publish('t', { payload: 'c' }).then(() => undefined));
  await until(() => seen.includes('c'), 'c');
  await sleep(100);
  expect(seen).toEqual(['a', 'b', 'b', 'c']);
});

it("against a version 8 server a reader resumes from its `from` ('latest'), as before version 9", async () => {
  const rig = await openRig(1, 8);
  const seen = await latestReaderAcrossReconnect(rig);
  // The server cannot take startOffsets, so what came while the reader was away is not delivered.
  expect(seen).toEqual(['0:m1', '0:m3']);
});

it('a message its handler released (threw RELEASED) comes again after a reconnect: the reader did not get it', async () => {
  const rig = await openRig(1);
  await rig.broker.publish('t', [{ payload: 'a' }, { payload: 'b' }]);
  const seen: string[] = [];
  await rig.client.subscribe('t', { from: 'earliest' }, (m) => {
    seen.push(String(m.payload));
    if (seen.length === 2) {
      // Cut before the server could deliver it again on this connection: only the resubscribe can.
      rig.proxy.cutAll();
      throw new WharfError('RELEASED', 'not now');
    }
  });
  await until(() => seen.length === 3, 'b again');
  await sleep(100);
  expect(seen).toEqual(['a', 'b', 'b']);
});

it('a released message handled again on the same connection does not move the resume point back past later ones (maxInFlight 3)', async () => {
  const rig = await openRig(1);
  await rig.broker.publish('t', [{ payload: 'a' }, { payload: 'b' }, { payload: 'c' }]);
  const seen: string[] = [];
  await rig.client.subscribe('t', { from: 'earliest', maxInFlight: 3 }, async (m) => {
    seen.push(String(m.payload));
    if (seen.length === 1) {
      await until(() => seen.length === 3, 'b and c handed while a runs');
      throw new WharfError('RELEASED', 'not now');
    }
  });
  await until(() => seen.length === 4, 'a again');
  await reconnectAround(rig, async () => undefined);
  expect(seen).toEqual(['a', 'b', 'c', 'a']);
});
