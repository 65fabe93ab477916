// In-process CLI runs against a real server (in-memory broker, ephemeral ports) through the real remote client.
import { Writable } from 'node:stream';
import { connect } from '../../src/client/index.js';
import type { CliContext } from '../../src/cli/context.js';
import { runCli } from '../../src/cli/program.js';
import { mergeConfig } from '../../src/server/config.js';
import { startServer, type WharfServer } from '../../src/server/index.js';

export async function startTestServer(): Promise<WharfServer> {
  const config = mergeConfig({
    flags: { inMemory: true, port: 0, httpPort: 0, logLevel: 'warn' },
    env: {},
    file: {},
    cwd: process.cwd(),
    fileDir: process.cwd(),
  });
  return startServer(config);
}

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `wharf args` in this process; stdin is what `publish <name> -` reads (default: nothing). */
export async function cli(server: WharfServer, args: string[], stdin = ''): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        append(chunk.toString());
        cb();
      },
    });
  const code = await runCli(
    {
      connect,
      stdout: sink((s) => (stdout += s)),
      stderr: sink((s) => (stderr += s)),
      env: { WHARF_URL: server.nativeUrl },
      stdin: [Buffer.from(stdin)],
    },
    args,
  );
  return { code, stdout, stderr };
}

/**
 * Runs `wharf args` in this process with the caller's own stdout (one that fails, or waits, as a
 * reader would) and, optionally, its own connect; stderr is captured.
 */
export async function cliWithStdout(
  server: WharfServer,
  args: string[],
  stdout: Writable,
  connectTo: CliContext['connect'] = connect,
): Promise<Omit<Captured, 'stdout'>> {
  let stderr = '';
  const code = await runCli(
    {
      connect: connectTo,
      stdout,
      stderr: new Writable({
        write(chunk: Buffer, _enc, cb) {
          stderr += chunk.toString();
          cb();
        },
      }),
      env: { WHARF_URL: server.nativeUrl },
    },
    args,
  );
  return { code, stderr };
}
