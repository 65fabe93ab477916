// GET /topics/{name}/events: Server-Sent Events streaming of a topic, with and without a consumer group.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpFixture, listen, type HttpFixture } from './http-helpers.js';

let f: HttpFixture;
let base: string;
beforeAll(async () => {
  f = await httpFixture({ maxSseStreams: 2 });
  base = await listen(f);
});
afterAll(async () => {
  await f.close();
});

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
}

/** Reads SSE events from a streaming fetch until `count` message events arrived. */
async function readEvents(url: string, count: number, onOpen?: () => Promise<void>): Promise<SseEvent[]> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  await onOpen?.();
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body!.getReader();
  while (events.filter((e) => e.event !== undefined).length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const ev: SseEvent = {};
      for (const line of block.split('\n')) {
        const m = /^(id|event|data): (.*)$/.exec(line);
        if (m) ev[m[1] as keyof SseEvent] = m[2];
      }
      if (ev.event !== undefined) events.push(ev);
    }
  }
  controller.abort();
  return events;
}

describe('HTTP Server-Sent Events', () => {
  it('streams a topic from earliest with partition:offset ids', async () => {
    await f.broker.createTopic('feed', { partitions: 1 });
    await f.broker.publish('feed', [
      { type: 'a', payload: { n: 1 } },
      { type: 'b', payload: { n: 2 } },
    ]);
    const events = await readEvents(`${base}/topics/feed/events?from=earliest`, 2);
    expect(events.map((e) => e.id)).toEqual(['0:0', '0:1']);
    expect(events.map((e) => e.event)).toEqual(['message', 'message']);
    const data = events.map((e) => JSON.parse(e.data!));
    expect(data[0]).toMatchObject({ topic: 'feed', partition: 0, offset: 0, type: 'a', payload: { n: 1 } });
  });

  it('delivers messages published after the stream opened (from latest)', async () => {
    await f.broker.createTopic('live', { partitions: 1 });
    await f.broker.publish('live', { payload: 'old' });
    const events = await readEvents(`${base}/topics/live/events`, 1, async () => {
      await new Promise((r) => setTimeout(r, 100));
      await f.broker.publish('live', { payload: 'new' });
    });
    expect(JSON.parse(events[0].data!).payload).toBe('new');
  });

  it('with ?group= commits what it streamed, so the next stream of the group continues after it', async () => {
    await f.broker.createTopic('grouped', { partitions: 1 });
    await f.broker.publish('grouped', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    const first = await readEvents(`${base}/topics/grouped/events?group=g1&from=earliest`, 3);
    expect(first.map((e) => JSON.parse(e.data!).payload)).toEqual([1, 2, 3]);
    await expect
      .poll(async () => {
        const s = await f.broker.stats('grouped');
        return s.kind === 'topic' ? s.groups.g1?.members : -1;
      })
      .toBe(0);
    await f.broker.publish('grouped', { payload: 4 });
    const next = await readEvents(`${base}/topics/grouped/events?group=g1&from=earliest`, 1);
    expect(JSON.parse(next[0].data!)).toMatchObject({ offset: 3, payload: 4 });
  });

  it('ends the stream with an error event NOT_FOUND when its topic is deleted', async () => {
    await f.broker.createTopic('doomed-feed', { partitions: 1 });
    await f.broker.publish('doomed-feed', { payload: 'first' });
    const events = await readEvents(`${base}/topics/doomed-feed/events?from=earliest`, 2, async () => {
      await new Promise((r) => setTimeout(r, 100));
      await f.broker.deleteTopic('doomed-feed');
    });
    expect(events.map((e) => e.event)).toEqual(['message', 'error']);
    expect(JSON.parse(events[1].data!)).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('refuses a stream beyond maxSseStreams with 429 LIMIT_EXCEEDED; open streams keep working', async () => {
    await f.broker.createTopic('busy', { partitions: 1 });
    const a = new AbortController();
    const b = new AbortController();
    const s1 = await fetch(`${base}/topics/busy/events`, { signal: a.signal });
    const s2 = await fetch(`${base}/topics/busy/events`, { signal: b.signal });
    expect([s1.status, s2.status]).toEqual([200, 200]);
    const third = await fetch(`${base}/topics/busy/events`);
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe('LIMIT_EXCEEDED');
    a.abort();
    b.abort();
  });

  it('answers errors before streaming: unknown topic 404, bad from 400', async () => {
    const missing = await fetch(`${base}/topics/nothing/events`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    await f.broker.createTopic('pos', { partitions: 1 });
    const bad = await fetch(`${base}/topics/pos/events?from=yesterday`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_ARGUMENT');
  });

  it('answers what the subscribe refuses with its status, not a 200 stream carrying an error event', async () => {
    await f.broker.createTopic('refused', { partitions: 1 });
    for (const query of ['group=..', 'from=99999999999999999999', 'from=ts:99999999999999999999']) {
      const res = await fetch(`${base}/topics/refused/events?${query}`);
      expect([query, res.status]).toEqual([query, 400]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_ARGUMENT');
    }
    // The slots of refused streams are free again: two (maxSseStreams) can still open.
    const streams = [0, 1].map(() => new AbortController());
    const opened = await Promise.all(streams.map((c) => fetch(`${base}/topics/refused/events`, { signal: c.signal })));
    expect(opened.map((r) => r.status)).toEqual([200, 200]);
    for (const c of streams) c.abort();
  });

  it('HEAD on the events route is 404 and reads nothing: a group keeps every message for a real stream', async () => {
    await f.broker.createTopic('headed', { partitions: 1 });
    await f.broker.publish('headed', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    const res = await fetch(`${base}/topics/headed/events?group=probe&from=earliest`, { method: 'HEAD' });
    expect(res.status).toBe(404);
    await new Promise((r) => setTimeout(r, 200));
    const stats = await f.broker.stats('headed');
    if (stats.kind !== 'topic') throw new Error('not a topic');
    expect(stats.groups.probe?.lag ?? 3).toBe(3);
    const events = await readEvents(`${base}/topics/headed/events?group=probe&from=earliest`, 3);
    expect(events.map((e) => JSON.parse(e.data!).payload)).toEqual([1, 2, 3]);
  });
});
