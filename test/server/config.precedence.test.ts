// `wharf serve` configuration: flags > environment > config file > defaults, with validation naming the source.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/server/config.js';
import { WharfError } from '../../src/common/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('server config', () => {
  it('defaults: ./data, native 7411 and HTTP 7412 on 127.0.0.1, fsync always', async () => {
    const c = await resolveConfig({ env: {}, cwd: dir });
    expect(c).toMatchObject({
      dataDir: join(dir, 'data'),
      host: '127.0.0.1',
      port: 7411,
      httpPort: 7412,
      fsync: 'always',
      inMemory: false,
    });
    expect(c.maxBodyBytes).toBe(2 * c.maxMessageBytes + 64 * 1024);
  });

  it('a flag beats the environment, which beats the config file, which beats the default', async () => {
    const file = join(dir, 'wharf.json');
    await writeFile(
      file,
      JSON.stringify({ port: 1001, httpPort: 1002, host: '127.0.0.2', fsync: 'never', dataDir: 'from-file' }),
    );
    const c = await resolveConfig({
      configPath: file,
      env: { WHARF_PORT: '2001', WHARF_HTTP_PORT: '2002', WHARF_FSYNC: 'interval' },
      flags: { port: '3001' },
      cwd: dir,
    });
    expect(c.port).toBe(3001); // flag
    expect(c.httpPort).toBe(2002); // env over file
    expect(c.fsync).toBe('interval'); // env over file
    expect(c.host).toBe('127.0.0.2'); // file over default
    expect(c.dataDir).toBe(join(dir, 'from-file')); // relative to the file's folder
    expect(c.maxConnections).toBe(1024); // default
  });

  it('WHARF_CONFIG names the config file when --config is absent', async () => {
    const file = join(dir, 'other.json');
    await writeFile(file, JSON.stringify({ maxMessageBytes: 4096 }));
    const c = await resolveConfig({ env: { WHARF_CONFIG: file }, cwd: dir });
    expect(c.maxMessageBytes).toBe(4096);
    expect(c.maxBodyBytes).toBe(2 * 4096 + 64 * 1024);
  });

  it('rejects a bad value and names where it came from', async () => {
    await expect(resolveConfig({ env: { WHARF_PORT: 'seventy' }, cwd: dir })).rejects.toThrow(/WHARF_PORT/);
    await expect(resolveConfig({ flags: { fsync: 'sometimes' }, env: {}, cwd: dir })).rejects.toThrow(
      /--fsync.*'always'/,
    );
    await expect(resolveConfig({ flags: { httpPort: 70000 }, env: {}, cwd: dir })).rejects.toThrow(/65535/);
    // Past 2^31 - 1 ms a Node timer fires at once: an idle timeout that long would cut every connection.
    await expect(resolveConfig({ env: { WHARF_IDLE_TIMEOUT_MS: String(2 ** 31) }, cwd: dir })).rejects.toThrow(
      /2147483647/,
    );
    // Checked here, not left to the logger, which would fail the start with an INTERNAL error.
    await expect(resolveConfig({ env: { WHARF_LOG_LEVEL: 'verbose' }, cwd: dir })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/WHARF_LOG_LEVEL.*trace/),
    });
    expect((await resolveConfig({ env: { WHARF_LOG_LEVEL: 'trace' }, cwd: dir })).logLevel).toBe('trace');
  });

  it('rejects an unknown key and invalid JSON in the config file with INVALID_ARGUMENT', async () => {
    const typo = join(dir, 'typo.json');
    await writeFile(typo, JSON.stringify({ prot: 1 }));
    const err = await resolveConfig({ configPath: typo, env: {}, cwd: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WharfError);
    expect((err as WharfError).code).toBe('INVALID_ARGUMENT');
    expect((err as WharfError).message).toMatch(/unknown setting "prot"/);
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{ port: ');
    await expect(resolveConfig({ configPath: broken, env: {}, cwd: dir })).rejects.toThrow(/not valid JSON/);
    await expect(resolveConfig({ configPath: join(dir, 'missing.json'), env: {}, cwd: dir })).rejects.toThrow(
      /cannot read config file/,
    );
  });
});
