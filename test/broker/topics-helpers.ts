// Shared by the topic and group tests: temp dirs, polling, error codes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Broker, Subscription, TopicMessage } from '../../src/broker/index.js';
import { WharfError } from '../../src/common/index.js';

export function tempDir(prefix = 'wharf-topics-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Polls until cond() is (or resolves) true; fails with `what` after timeoutMs. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The WharfError code a promise rejects with ('resolved' when it does not). */
export async function codeOf(p: Promise<unknown> | (() => Promise<unknown>)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err instanceof WharfError ? err.code : `not a WharfError: ${String(err)}`;
  }
  return 'resolved';
}

/** A member of group `g` reading `topic` from earliest, closed through `cleanups` after the test. */
export async function subscribeGroup(
  b: Broker,
  topic: string,
  options: object,
  handler: (m: TopicMessage) => Promise<void> | void,
  cleanups: Array<() => Promise<void> | void>,
): Promise<Subscription> {
  const sub = await b.subscribe(topic, { group: 'g', from: 'earliest', ...options }, handler);
  cleanups.push(() => sub.close());
  return sub;
}
