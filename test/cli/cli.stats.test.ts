// `wharf stats`: the table of every name survives a name deleted while it is read, and `--watch` is a
// flag (the name after it is the name to watch) with its period in `--interval`; with `--json` it prints
// one JSON line per refresh.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import type { CliContext } from '../../src/cli/context.js';
import type { WharfServer } from '../../src/server/index.js';
import { cli, cliWithStdout, startTestServer, type Captured } from './cli-helpers.js';

let server: WharfServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** Runs the command with a stdout whose write of frame n (from 1) first runs onFrame(n). */
async function run(
  args: string[],
  onFrame: (n: number) => Promise<void> | 'closed',
  connectTo: CliContext['connect'] = connect,
): Promise<Captured> {
  let stdout = '';
  let frames = 0;
  const reader = new Writable({
    write(c: Buffer, _e, cb) {
      const next = onFrame(++frames);
      if (next === 'closed') return cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      stdout += c.toString();
      void next.then(() => cb());
    },
  });
  return { ...(await cliWithStdout(server, args, reader, connectTo)), stdout };
}

const untouched = (): Promise<void> => Promise.resolve();
/** The reader takes `frames` frames, then goes away (ends a --watch). */
const readerTakes =
  (frames: number) =>
  (n: number): Promise<void> | 'closed' =>
    n <= frames ? untouched() : 'closed';

describe('wharf stats, names deleted meanwhile', () => {
  it('the table leaves out a listed queue deleted before its stats are read', async () => {
    await server.broker.createQueue('stays');
    // A client that lists the queues a moment before another process deletes `gone`.
    const listsGone: CliContext['connect'] = async (url) => {
      const c = await connect(url);
      const list = c.listQueues.bind(c);
      c.listQueues = async () => [...(await list()), { name: 'gone' } as never];
      return c;
    };
    for (const args of [['stats'], ['stats', '--json']]) {
      const out = await run(args, untouched, listsGone);
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      expect(out.stdout).toContain('stays');
      expect(out.stdout).not.toContain('gone');
    }
    const watched = await run(['stats', '--watch', '--interval', '50'], readerTakes(2), listsGone);
    expect(watched).toMatchObject({ code: 0, stderr: '' });
    expect(watched.stdout).toContain('stays');
  });

  it('a watched name that is deleted ends the watch with NOT_FOUND saying so', async () => {
    await server.broker.createQueue('doomed');
    const out = await run(['stats', 'doomed', '--watch', '--interval', '50'], async (n) => {
      if (n === 1) await server.broker.deleteQueue('doomed');
    });
    expect(out.code).toBe(1);
    expect(out.stdout).toContain('doomed');
    expect(out.stderr).toMatch(/^error NOT_FOUND: "doomed" was deleted while watching its stats\n/);
  });
});

describe('wharf stats --watch [name] --interval <ms>', () => {
  it('reads the word after --watch as the name to watch', async () => {
    await server.broker.createQueue('qa');
    await server.broker.publish('qa', [{ payload: 1 }, { payload: 2 }]);
    const out = await run(['stats', '--watch', 'qa'], readerTakes(1));
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toMatch(/qa\s+queue\s+2\s+0/);
    const before = await run(['stats', 'qa', '--watch', '--interval', '50'], readerTakes(2));
    expect(before).toMatchObject({ code: 0, stderr: '' });
    expect(before.stdout.split('\x1b[2J\x1b[H').filter(Boolean)).toHaveLength(2);
  });

  it('with --json prints one JSON document per refresh, one a line (NDJSON), without clearing the screen', async () => {
    await server.broker.createQueue('qj');
    await server.broker.publish('qj', { payload: 1 });
    const lines = (stdout: string): unknown[] => {
      expect(stdout).not.toContain('\x1b');
      expect(stdout.endsWith('\n')).toBe(true);
      return stdout
        .slice(0, -1)
        .split('\n')
        .map((line) => JSON.parse(line) as unknown);
    };
    // One name: its stats in full, as `stats qj` prints them once.
    const one = await run(['stats', 'qj', '--watch', '--json', '--interval', '50'], readerTakes(2));
    expect(one).toMatchObject({ code: 0, stderr: '' });
    const docs = lines(one.stdout);
    expect(docs).toHaveLength(2);
    for (const doc of docs) expect(doc).toMatchObject({ name: 'qj', kind: 'queue', depth: 1, inFlight: 0 });
    // Every name: the rows, as `stats --json` prints them once.
    const all = await run(['stats', '--json', '--watch', '--interval', '50'], readerTakes(3));
    expect(all).toMatchObject({ code: 0, stderr: '' });
    const refreshes = lines(all.stdout);
    expect(refreshes).toHaveLength(3);
    for (const rows of refreshes) expect(rows).toContainEqual(expect.objectContaining({ name: 'qj', depth: 1 }));
    const names = (rows: unknown): string[] => (rows as Array<{ name: string }>).map((r) => r.name);
    expect(names(refreshes[0])).toEqual(names(JSON.parse((await cli(server, ['stats', '--json'])).stdout)));
  });

  it('refuses an --interval below 50 ms, or one without --watch, as usage errors (exit 2)', async () => {
    const short = await cli(server, ['stats', '--watch', '--interval', '10']);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(
      /^error: option '--interval <ms>' argument '10' is invalid\. --interval takes a whole number >= 50\n/,
    );
    const alone = await cli(server, ['stats', '--interval', '500']);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/^error: --interval sets how often --watch refreshes; add --watch\n/);
  });

  it('--help shows --watch as a flag, --interval with its default and what it refreshes in either mode, and what --json does with --watch', async () => {
    const help = (await cli(server, ['stats', '--help'])).stdout;
    expect(help).toMatch(/--watch\s+redraw/);
    // Commander wraps descriptions at the terminal's width: compare with the line breaks taken out.
    expect(help.replace(/\s+/g, ' ')).toContain(
      '--interval <ms> with --watch: refresh every ms, redrawing the table or printing a JSON line (default 1000)',
    );
    expect(help).toMatch(
      /--json\s+print JSON even for the table; with --watch, one JSON\s+document per refresh, one a line \(NDJSON\)/,
    );
  });
});
