// What a remote client does when its connection is lost at an awkward moment: requests that may
// have taken effect are not sent twice, a resumed flow subscribes once, and an open client keeps
// its process alive while it reconnects.
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker, type QueueStats } from '../../src/broker/index.js';
import { connect, type RemoteWharf } from '../../src/client/index.js';
import { OP } from '../../src/protocol/index.js';
import { startNativeServer } from '../../src/server/native/index.js';
import { startFrameProxy, until, type FrameProxy } from './frame-proxy.js';

const CHILD = fileURLToPath(new URL('./fixtures/reconnecting-consumer.ts', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Rig {
  broker: Broker;
  proxy: FrameProxy;
  client: RemoteWharf;
  close(): Promise<void>;
}

async function openRig(): Promise<Rig> {
  const broker = await Broker.open({ inMemory: true });
  await broker.createQueue('q');
  const server = await startNativeServer(broker, { port: 0 });
  const proxy = await startFrameProxy(server.address().port);
  const client = await connect(`wharf://127.0.0.1:${proxy.port}`, {
    reconnectInitialDelayMs: 10,
    reconnectMaxDelayMs: 20,
    connectTimeoutMs: 300,
  });
  return {
    broker,
    proxy,
    client,
    close: async () => {
      await client.close();
      await proxy.close();
      await server.close();
      await broker.close();
    },
  };
}

async function depthOf(broker: Broker): Promise<number> {
  return ((await broker.stats('q')) as { depth: number }).depth;
}

describe('remote client, connection lost at an awkward moment', () => {
  const open: Rig[] = [];
  const rig = async (): Promise<Rig> => {
    const r = await openRig();
    open.push(r);
    return r;
  };
  afterEach(async () => {
    for (const r of open.splice(0)) await r.close();
  });

  it('a purge whose answer is lost fails with UNAVAILABLE and is not sent again: messages published after it stay', async () => {
    const { broker, proxy, client } = await rig();
    await broker.publish('q', [{ payload: 'old1' }, { payload: 'old2' }]);
    proxy.muteServerOn = 0;
    const purge = client.purgeQueue('q');
    while ((await depthOf(broker)) !== 0) await sleep(10); // purged on the server; its answer is dropped
    await broker.publish('q', [{ payload: 'new1' }, { payload: 'new2' }, { payload: 'new3' }]);
    proxy.cutAll();
    await expect(purge).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await until(() => proxy.connections >= 2, 'a reconnect');
    await client.describeQueue('q'); // the new connection is up and answering
    expect(proxy.opsByConnection[1]).not.toContain(OP.PURGE_QUEUE);
    expect(await depthOf(broker)).toBe(3);
  });

  it('a create whose answer is lost fails with UNAVAILABLE, and the queue exists once', async () => {
    const { broker, proxy, client } = await rig();
    proxy.muteServerOn = 0;
    const created = client.createQueue('other');
    await until(() => proxy.opsByConnection[0].includes(OP.CREATE_QUEUE), 'the create to reach the server');
    while (!(await broker.listQueues()).some((q) => q.name === 'other')) await sleep(10);
    proxy.cutAll();
    await expect(created).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect((await client.describeQueue('other')).name).toBe('other');
  });

  it('a transaction whose answer is lost fails with UNAVAILABLE and is not sent again: committed once', async () => {
    const { broker, proxy, client } = await rig();
    await broker.createQueue('out');
    await broker.publish('q', { payload: 'input' });
    const [input] = await client.receive('q');
    proxy.muteServerOn = 0;
    const committed = client.transaction(async (tx) => {
      await tx.ack(input);
      await tx.publish('out', { payload: 'output' });
    });
    while (((await broker.stats('out')) as QueueStats).depth !== 1) await sleep(10); // committed; its answer is dropped
    proxy.cutAll();
    await expect(committed).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await until(() => proxy.connections >= 2, 'a reconnect');
    await client.describeQueue('q');
    expect(proxy.opsByConnection[1]).not.toContain(OP.TRANSACTION);
    expect(((await broker.stats('q')) as QueueStats).inFlight + (await depthOf(broker))).toBe(0);
    expect(((await broker.stats('out')) as QueueStats).depth).toBe(1);
  });

  it('a publish whose confirm is lost is sent again and resolves as published once (stored once, not a duplicate); a dedupId repeat stays a duplicate', async () => {
    const { broker, proxy, client } = await rig();
    await broker.publish('q', { payload: 'earlier', dedupId: 'd1' });
    proxy.muteServerOn = 0;
    const first = client.publish('q', { payload: 'once' });
    const repeat = client.publish('q', { payload: 'again', dedupId: 'd1' });
    while ((await depthOf(broker)) !== 2) await sleep(10); // stored on the server; the confirm is dropped
    proxy.cutAll();
    const [once, dup] = await Promise.all([first, repeat]);
    await until(() => proxy.connections >= 2, 'a reconnect');
    expect(proxy.opsByConnection[1]).toContain(OP.PUBLISH); // re-sent on the new connection
    expect(once.duplicate).toBeUndefined();
    expect(once.repeatedSequence).toBeUndefined();
    expect(dup).toMatchObject({ duplicate: true });
    expect(dup.repeatedSequence).toBeUndefined();
    expect(await depthOf(broker)).toBe(2);
    const got = await broker.receive('q', { max: 10 });
    expect(got.map((m) => m.payload)).toEqual(['earlier', 'once']);
    expect(got[1].id).toBe(once.id);
  });

  it('an exchange publish whose confirm is lost is sent again, stored once, and resolves as a duplicate (how many targets it reached is not remembered)', async () => {
    const { broker, proxy, client } = await rig();
    await broker.createExchange('ex', { type: 'fanout' });
    await broker.bind('ex', { queue: 'q' });
    proxy.muteServerOn = 0;
    const sent = client.publish('ex', { payload: 'once' });
    while ((await depthOf(broker)) !== 1) await sleep(10);
    proxy.cutAll();
    const result = await sent;
    expect(result).toMatchObject({ duplicate: true });
    expect(result.repeatedSequence).toBeUndefined();
    expect(await depthOf(broker)).toBe(1);
  });

  it('a RECEIVE whose answer is lost is sent again with its attempt id and gets the same message, not one held until its lease ends', async () => {
    const { broker, proxy, client } = await rig();
    await broker.publish('q', { payload: 'leased once' });
    proxy.muteServerOn = 0;
    const received = client.receive('q', { max: 5, waitMs: 5_000, visibilityTimeoutMs: 60_000 });
    await until(() => proxy.opsByConnection[0].includes(OP.RECEIVE), 'the receive to reach the server');
    while (((await broker.stats('q')) as { inFlight: number }).inFlight !== 1) await sleep(10); // leased; the answer is dropped
    proxy.cutAll();
    const got = await received;
    expect(got.map((m) => [m.payload, m.deliveryCount])).toEqual([['leased once', 1]]);
    await got[0].ack();
    expect(await depthOf(broker)).toBe(0);
    expect(((await broker.stats('q')) as { inFlight: number }).inFlight).toBe(0);
  });

  it('a read whose answer is lost is sent again after the reconnect, and answers', async () => {
    const { proxy, client } = await rig();
    proxy.muteServerOn = 0;
    const described = client.describeQueue('q');
    await until(() => proxy.opsByConnection[0].includes(OP.DESCRIBE_QUEUE), 'the describe to reach the server');
    proxy.cutAll();
    expect((await described).name).toBe('q');
    expect(proxy.opsByConnection[1]).toContain(OP.DESCRIBE_QUEUE);
  });

  it('a consumer whose resumed CONSUME is cut subscribes once on the next connection, and once closed receives nothing', async () => {
    const { broker, proxy, client } = await rig();
    let closed = false;
    const afterClose: unknown[] = [];
    const consumer = await client.consume('q', { concurrency: 1 }, (m) => {
      if (closed) afterClose.push(m.payload);
    });
    proxy.cutAt = (connection, op) => connection === 1 && op === OP.CONSUME; // the resume on the 2nd connection is lost
    proxy.cutAll();
    await until(
      () => proxy.connections >= 3 && proxy.opsByConnection[2].includes(OP.CONSUME),
      'the resume on a third connection',
    );
    await sleep(300); // a second resume, if any, would go out meanwhile
    expect(proxy.opsByConnection[2].filter((op) => op === OP.CONSUME)).toHaveLength(1);
    await consumer.close();
    closed = true;
    await broker.publish(
      'q',
      [0, 1, 2, 3].map((n) => ({ payload: n })),
    );
    await sleep(300);
    expect(afterClose).toEqual([]);
    expect(await depthOf(broker)).toBe(4);
  });

  it('a consumer closed while its resumed CONSUME is unanswered never runs its handler after close() resolved; what the server sent it goes back to the queue', async () => {
    const { broker, proxy, client } = await rig();
    // Failed deliveries come back after 10 ms, not the default second.
    await broker.createQueue('resume', { retry: { initialDelayMs: 10, maxDelayMs: 10 } });
    const queueStats = async () => (await broker.stats('resume')) as QueueStats;
    let closed = false;
    const afterClose: unknown[] = [];
    const consumer = await client.consume('resume', { concurrency: 1 }, (m) => {
      if (closed) afterClose.push(m.payload);
    });
    await broker.publish('resume', [{ payload: 'a' }]);
    await until(async () => (await queueStats()).ackRate > 0, 'a to be handled and acked');
    // On the second connection, SUBSCRIBED and the DELIVER behind it arrive late, in one chunk.
    proxy.delayServerAfter = { from: 1, op: OP.CONSUME, ms: 300 };
    proxy.cutAll();
    await sleep(50); // the server has ended the first connection's flow
    await broker.publish('resume', [{ payload: 'c' }]); // ready when the consumer resumes
    await until(() => (proxy.opsByConnection[1] ?? []).includes(OP.CONSUME), 'the resume on the second connection');
    await consumer.close();
    closed = true;
    await until(() => proxy.opsByConnection[1].includes(OP.UNSUBSCRIBE), 'the resumed flow to be unsubscribed');
    await sleep(400); // the answer to the UNSUBSCRIBE, and any delivery before it, arrive meanwhile
    expect(afterClose).toEqual([]);
    // Sent to the closed consumer and never settled: the server failed it, so it is ready again.
    await until(async () => (await queueStats()).depth === 1, 'c to be back in the queue');
    expect((await broker.receive('resume')).map((m) => m.payload)).toEqual(['c']);
  });

  for (const freedWhile of ['after the reconnect', 'while disconnected'] as const) {
    it(`deliveries waiting for a handler slot when the connection drops are not run (slot freed ${freedWhile}): the server delivers them again`, async () => {
      const { broker, proxy, client } = await rig();
      const runs = new Map<number, number>();
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      // Failed deliveries come back after 10 ms, not the default second.
      await broker.createQueue('slots', { retry: { initialDelayMs: 10, maxDelayMs: 10 } });
      await client.consume('slots', { concurrency: 1, prefetch: 3 }, async (m) => {
        const n = m.payload as number;
        runs.set(n, (runs.get(n) ?? 0) + 1);
        if (n === 1 && runs.get(1) === 1) await held; // the first run of message 1 holds the only slot
      });
      await broker.publish(
        'slots',
        [1, 2, 3].map((n) => ({ payload: n })),
      );
      await until(() => runs.get(1) === 1, 'message 1 to run');
      await sleep(100); // 2 and 3 have arrived and wait for the slot
      if (freedWhile === 'while disconnected') proxy.swallowFrom = proxy.connections; // reconnects get no answer yet
      proxy.cutAll();
      if (freedWhile === 'while disconnected') {
        await sleep(100); // the client has seen its connection close
        release();
        await sleep(100);
        expect([runs.get(2), runs.get(3)]).toEqual([undefined, undefined]);
        proxy.swallowFrom = Infinity;
      }
      await until(
        () => proxy.opsByConnection.some((ops, i) => i > 0 && ops.includes(OP.CONSUME)),
        'the consumer to resume',
      );
      release();
      await until(
        () => (runs.get(2) ?? 0) >= 1 && (runs.get(3) ?? 0) >= 1,
        'messages 2 and 3 to be delivered again and run',
      );
      await sleep(500); // a second run, if any, comes meanwhile
      expect([runs.get(2), runs.get(3)]).toEqual([1, 1]);
    });
  }

  it('while reconnecting, at most maxWaitingRequests requests wait; more fail at once with LIMIT_EXCEEDED, and those waiting are answered once it is back', async () => {
    const { broker, proxy } = await rig();
    const client = await connect(`wharf://127.0.0.1:${proxy.port}`, {
      reconnectInitialDelayMs: 10,
      reconnectMaxDelayMs: 20,
      connectTimeoutMs: 200,
      maxWaitingRequests: 3,
    });
    try {
      const before = proxy.connections;
      proxy.swallowFrom = before; // attempts from now on get no answer
      proxy.cutAll();
      await until(() => proxy.connections > before, 'a reconnect attempt');
      const waiting = [1, 2, 3].map(() => client.describeQueue('q'));
      await expect(client.publish('q', { payload: 'over' })).rejects.toMatchObject({
        code: 'LIMIT_EXCEEDED',
        details: { limit: 'maxWaitingRequests' },
      });
      proxy.swallowFrom = Infinity;
      expect((await Promise.all(waiting)).map((q) => q.name)).toEqual(['q', 'q', 'q']);
      expect(await depthOf(broker)).toBe(0); // the refused publish stored nothing
    } finally {
      await client.close();
    }
  });

  it('refuses connect options that would turn a limit off or time out every attempt', async () => {
    for (const options of [
      { maxWaitingRequests: Number.NaN },
      { connectTimeoutMs: 0 },
      { reconnectTimeoutMs: -1 },
      { subscribeCredits: 0 },
      { subscribeCredits: 1.5 },
      { subscribeCredits: 2 ** 32 + 1 },
    ]) {
      await expect(connect('wharf://127.0.0.1:1', options)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });

  it('a connection attempt whose handshake is never answered fails after connectTimeoutMs, and close() ends one in progress', async () => {
    const { proxy, client } = await rig();
    proxy.swallowFrom = 1; // from the second connection on, the server never sees HELLO
    proxy.cutAll();
    await until(() => proxy.connections >= 3, 'a second attempt after the first timed out', 15_000);
    await client.close();
    await until(() => proxy.openSockets === 0, 'close() to end the attempt in progress');
    // A first connect to a server that accepts and never answers.
    const accepted = new Set<Socket>();
    const silent = createServer((s) => accepted.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    await expect(connect(`wharf://127.0.0.1:${port}`, { connectTimeoutMs: 200 })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining('connectTimeoutMs'),
    });
    for (const s of accepted) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it(
    'an open consumer keeps its process alive while its server is away, and resumes when it is back',
    { timeout: 30_000 },
    async () => {
      const broker = await Broker.open({ inMemory: true });
      await broker.createQueue('q');
      let server = await startNativeServer(broker, { port: 0 });
      const port = server.address().port;
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(port)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      try {
        await until(() => out.includes('open'), 'the worker to start', 20_000);
        await server.close();
        await sleep(1_500);
        expect(child.exitCode).toBeNull(); // before: it exited with 0, its reconnect timer unref'd
        server = await startNativeServer(broker, { port });
        await broker.publish('q', { payload: 'after' });
        await until(() => out.includes('got after'), 'the resumed consumer to get a message', 10_000);
      } finally {
        child.kill('SIGKILL');
        await server.close();
        await broker.close();
      }
    },
  );
});
