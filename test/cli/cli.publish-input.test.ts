// What `wharf publish` reads: a payload from its argument, a file or stdin, one message per line with
// --lines; empty input and a bad line are INVALID_ARGUMENT saying which, and nothing is published.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WharfServer } from '../../src/server/index.js';
import { cli, startTestServer } from './cli-helpers.js';

let server: WharfServer;
beforeAll(async () => {
  server = await startTestServer();
  await server.broker.createQueue('inbox');
  await server.broker.createTopic('orders', { partitions: 1 });
});
afterAll(async () => {
  await server.close();
});

async function depth(): Promise<number> {
  const s = await server.broker.stats('inbox');
  return s.kind === 'queue' ? s.depth : -1;
}

describe('wharf publish input', () => {
  it("the README's example publishes the amount as the payload and order.created as the type", async () => {
    const out = await cli(server, ['publish', 'orders', '{"amount":99.99}', '--type', 'order.created']);
    expect(out.code).toBe(0);
    const seen = await new Promise<{ type: string; payload: unknown }>((resolve) => {
      void server.broker
        .subscribe('orders', { from: 'earliest' }, async (m) => resolve(m))
        .then((sub) => setTimeout(() => void sub.close(), 200));
    });
    expect({ type: seen.type, payload: seen.payload }).toEqual({ type: 'order.created', payload: { amount: 99.99 } });
  });

  it('--lines publishes one message per non-blank line of stdin', async () => {
    const out = await cli(server, ['publish', 'inbox', '-', '--lines'], '{"n":1}\n\n{"n":2}\n');
    expect(out.code).toBe(0);
    expect(out.stdout.trim().split('\n')).toHaveLength(2);
    expect(await depth()).toBe(2);
    await server.broker.purgeQueue('inbox');
  });

  it('--lines with empty or blank stdin is INVALID_ARGUMENT: no messages on stdin', async () => {
    for (const stdin of ['', '\n  \n\n']) {
      const out = await cli(server, ['publish', 'inbox', '-', '--lines'], stdin);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/^error INVALID_ARGUMENT: no messages on stdin: /);
    }
    expect(await depth()).toBe(0);
  });

  it('--lines names the line that is not JSON, and publishes none of them', async () => {
    const out = await cli(server, ['publish', 'inbox', '-', '--lines'], '{"n":1}\n\n{"n":\n{"n":3}\n');
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^error INVALID_ARGUMENT: line 3 of stdin: the payload is not valid JSON/);
    expect(await depth()).toBe(0);
  });

  it('one message from empty stdin says stdin was empty, not that the payload is not JSON', async () => {
    for (const args of [
      ['publish', 'inbox', '-'],
      ['publish', 'inbox'],
    ]) {
      const out = await cli(server, args, ' \n');
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/^error INVALID_ARGUMENT: stdin was empty; /);
    }
    expect(await depth()).toBe(0);
  });
});
