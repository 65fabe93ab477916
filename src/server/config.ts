// Resolves the server's configuration. Precedence, highest first: command-line flags, environment
// variables (WHARF_*), the config file (--config / WHARF_CONFIG, JSON), built-in defaults.
// Every value is validated; a bad one fails with INVALID_ARGUMENT naming where it came from.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { WharfError } from '../common/index.js';
import {
  DEFAULT_CONFIG,
  LOG_LEVELS,
  SETTINGS,
  defaultMaxBodyBytes,
  type ServerConfig,
  type Setting,
  type SettingKey,
} from './config-table.js';

export type RawSettings = Partial<Record<SettingKey, unknown>>;

export interface ConfigSources {
  /** Parsed flags, keyed by setting key; undefined entries are ignored. */
  flags?: RawSettings;
  env?: Record<string, string | undefined>;
  /** Path of a JSON config file; default: env WHARF_CONFIG, else none. */
  configPath?: string;
  /** Resolves a relative dataDir from flags or env (default process.cwd()). */
  cwd?: string;
}

export async function resolveConfig(sources: ConfigSources = {}): Promise<ServerConfig> {
  const env = sources.env ?? {};
  const cwd = sources.cwd ?? process.cwd();
  const path = sources.configPath ?? env.WHARF_CONFIG;
  const file = path === undefined ? {} : await readConfigFile(resolve(cwd, path));
  return mergeConfig({
    flags: sources.flags ?? {},
    env,
    file,
    cwd,
    fileDir: path === undefined ? cwd : dirname(resolve(cwd, path)),
  });
}

export interface MergeInput {
  flags: RawSettings;
  env: Record<string, string | undefined>;
  file: RawSettings;
  cwd: string;
  /** A relative dataDir in the config file is relative to the file's folder. */
  fileDir: string;
}

export function mergeConfig(input: MergeInput): ServerConfig {
  const out: Record<string, unknown> = { ...DEFAULT_CONFIG };
  let dataDirBase = input.cwd;
  for (const setting of SETTINGS as readonly Setting[]) {
    const fromFlag = input.flags[setting.key as SettingKey];
    const fromEnv = input.env[setting.env];
    const fromFile = input.file[setting.key as SettingKey];
    if (fromFlag !== undefined) out[setting.key] = parseValue(setting, fromFlag, `flag ${setting.flag.split(' ')[0]}`);
    else if (fromEnv !== undefined && fromEnv !== '')
      out[setting.key] = parseValue(setting, fromEnv, `environment variable ${setting.env}`);
    else if (fromFile !== undefined) {
      out[setting.key] = parseValue(setting, fromFile, `config file key "${setting.key}"`);
      if (setting.key === 'dataDir') dataDirBase = input.fileDir;
    }
  }
  const config = out as unknown as ServerConfig;
  config.dataDir = resolve(dataDirBase, config.dataDir);
  config.maxBodyBytes ??= defaultMaxBodyBytes(config.maxMessageBytes);
  return config;
}

export async function readConfigFile(path: string): Promise<RawSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `cannot read config file ${path}: ${(err as Error).message}; check the --config path`,
      { cause: err },
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new WharfError('INVALID_ARGUMENT', `config file ${path} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new WharfError('INVALID_ARGUMENT', `config file ${path} must hold a JSON object of settings`);
  }
  const known = new Set<string>(SETTINGS.map((s) => s.key));
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) {
      throw new WharfError(
        'INVALID_ARGUMENT',
        `config file ${path}: unknown setting "${key}"; known: ${[...known].join(', ')}`,
      );
    }
  }
  return doc as RawSettings;
}

function parseValue(setting: Setting, value: unknown, source: string): unknown {
  const parsed = parseSetting(setting, value);
  if (parsed === undefined)
    throw new WharfError('INVALID_ARGUMENT', `${source} = ${JSON.stringify(value)}: expected ${settingTakes(setting)}`);
  return parsed;
}

/**
 * A setting's value from a flag, an environment variable (strings) or the config file (JSON values),
 * or undefined when it is not one; settingTakes says what it takes. Shared by every source, each of
 * which reports a bad value its own way (`wharf serve` a flag's as a usage error).
 */
export function parseSetting(setting: Setting, value: unknown): unknown {
  switch (setting.kind) {
    case 'string':
      return typeof value === 'string' && value !== '' ? value : undefined;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      return undefined;
    case 'fsync':
      return value === 'always' || value === 'interval' || value === 'never' ? value : undefined;
    case 'logLevel':
      return (LOG_LEVELS as readonly unknown[]).includes(value) ? value : undefined;
    case 'int': {
      const n =
        typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
      const inRange = n >= (setting.min ?? 0) && (setting.max === undefined || n <= setting.max);
      return Number.isSafeInteger(n) && inRange ? n : undefined;
    }
  }
}

/** What a setting takes, as the end of a sentence: "a whole number from 0 to 65535". */
export function settingTakes(setting: Setting): string {
  switch (setting.kind) {
    case 'string':
      return 'a non-empty string';
    case 'boolean':
      return 'true or false';
    case 'fsync':
      return "'always', 'interval' or 'never'";
    case 'logLevel':
      return `one of ${LOG_LEVELS.join(', ')}`;
    case 'int':
      return setting.max === undefined
        ? `a whole number >= ${setting.min ?? 0}`
        : `a whole number from ${setting.min ?? 0} to ${setting.max}`;
  }
}
