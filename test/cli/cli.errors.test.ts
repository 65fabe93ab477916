// How a failing `wharf` command ends: `error CODE: message`, and for a client command a `fix:` line;
// `wharf serve` failures carry their own fix in the message, so no client-side fix contradicts it.
// A usage error (docs/operations.md, "The wharf command in scripts") exits 2 before anything is sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WharfServer } from '../../src/server/index.js';
import { cli, startTestServer } from './cli-helpers.js';

let server: WharfServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

describe('wharf error output', () => {
  it('serve on a port in use says which port and how to fix it, without the client fix', async () => {
    const port = new URL(server.nativeUrl).port;
    const out = await cli(server, ['serve', '--in-memory', '--port', port, '--http-port', '0', '--log-level', 'warn']);
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(
      `error UNAVAILABLE: native port ${port} on 127.0.0.1 is in use; stop the other process or pass --port\n`,
    );
  });

  it('a client command that cannot reach its server still says to start one', async () => {
    const out = await cli(server, ['queues', 'list', '--url', 'wharf://127.0.0.1:1']);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^error UNAVAILABLE: .*\n {2}fix: is the server running\? start it with `wharf serve`/);
  });
});

describe('wharf usage errors', () => {
  it('a bad option value exits 2 as an unknown option does, saying what the option takes, and sends nothing', async () => {
    const unknown = await cli(server, ['consume', 'q', '--bogus']);
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toMatch(/^error: unknown option '--bogus'\n\(add --help for usage\)\n$/);
    for (const [args, says] of [
      [['consume', 'q', '--count', 'abc'], '--count takes a whole number >= 1'],
      [['tail', 't', '--count', '0'], '--count takes a whole number >= 1'],
      [['consume', 't', '--from', 'yesterday'], '--from takes earliest, latest, an offset, or ts:<ms since epoch>'],
      [['topics', 'create', 'never', '--partitions', 'two'], '--partitions takes a whole number >= 1'],
      [['topics', 'create', 'never', '--options', 'nope'], '--options is not valid JSON'],
      [['queues', 'create', 'never', '--options', '[1]'], '--options must be a JSON object'],
      [['publish', 'q', '1', '--header', 'tenant'], 'A header is key=value'],
      [['publish', 'q', '1', '--priority', '-1'], '--priority takes a whole number >= 0'],
      [['dlq', 'redrive', 'q.dlq', '--max', '0'], '--max takes a whole number >= 1'],
      [['bench', '--size', '0'], '--size takes a whole number >= 1'],
    ] as Array<[string[], string]>) {
      const out = await cli(server, args);
      expect(out, args.join(' ')).toMatchObject({ code: 2, stdout: '' });
      expect(out.stderr, args.join(' ')).toMatch(/^error: option '.*' argument '.*' is invalid\. /);
      expect(out.stderr, args.join(' ')).toContain(says);
      expect(out.stderr, args.join(' ')).toMatch(/\(add --help for usage\)\n$/);
    }
    expect(await server.broker.listTopics()).toEqual([]);
    expect(await server.broker.listQueues()).toEqual([]);
  });

  it('serve with a bad flag value exits 2 as a client command does, saying what the flag takes, and starts nothing', async () => {
    for (const [args, says] of [
      [
        ['--port', 'abc'],
        "option '--port <port>' argument 'abc' is invalid. --port takes a whole number from 0 to 65535",
      ],
      [['--port', '70000'], '--port takes a whole number from 0 to 65535'],
      [['--fsync', 'sometimes'], "--fsync takes 'always', 'interval' or 'never'"],
      [['--max-connections', '0'], '--max-connections takes a whole number >= 1'],
      [['--log-level', 'verbose'], '--log-level takes one of fatal, error, warn, info, debug, trace, silent'],
      [['--data-dir', ''], '--data-dir takes a non-empty string'],
    ] as Array<[string[], string]>) {
      const out = await cli(server, ['serve', '--in-memory', '--http-port', '0', ...args]);
      expect(out, args.join(' ')).toMatchObject({ code: 2, stdout: '' });
      expect(out.stderr, args.join(' ')).toMatch(/^error: option '.*' argument '.*' is invalid\. /);
      expect(out.stderr, args.join(' ')).toContain(says);
      expect(out.stderr, args.join(' ')).toMatch(/\(add --help for usage\)\n$/);
    }
  });

  it('options that only go together exit 2, before connecting', async () => {
    for (const [args, says] of [
      [['stats', '--interval', '100'], 'error: --interval sets how often --watch refreshes; add --watch'],
      [['exchanges', 'bind', 'e'], 'error: give exactly one target: --queue, --topic or --exchange'],
      [['exchanges', 'bind', 'e', '--queue', 'a', '--topic', 'b'], 'error: give exactly one target'],
    ] as Array<[string[], string]>) {
      const out = await cli(server, [...args, '--url', 'wharf://127.0.0.1:1']);
      expect(out, args.join(' ')).toMatchObject({ code: 2, stdout: '' });
      expect(out.stderr.startsWith(says), out.stderr).toBe(true);
    }
  });

  it('consume of a queue with --group or --from exits 2 and receives nothing (only topics have groups and positions)', async () => {
    const url = server.nativeUrl;
    expect((await cli(server, ['queues', 'create', 'cli-usage-q', '--url', url])).code).toBe(0);
    expect((await cli(server, ['publish', 'cli-usage-q', '1', '--url', url])).code).toBe(0);
    for (const flags of [
      ['--group', 'g'],
      ['--from', 'latest'],
      ['--group', 'g', '--from', '0'],
    ]) {
      const out = await cli(server, ['consume', 'cli-usage-q', ...flags, '--count', '1', '--url', url]);
      expect(out, flags.join(' ')).toMatchObject({ code: 2, stdout: '' });
      expect(out.stderr).toMatch(/is a queue, and only topics have groups and positions/);
    }
    const ok = await cli(server, ['consume', 'cli-usage-q', '--count', '1', '--url', url]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).payload).toBe(1);
  });
});
