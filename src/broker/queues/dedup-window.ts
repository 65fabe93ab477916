// Publish dedup: a dedupId (or content hash) seen within dedupWindowMs resolves with the original's id.
// Entries are remembered in time order, so they expire in insertion order (a Map iterates oldest
// first) and sweeping costs O(expired); lookup still checks the entry it finds, so one remembered
// out of order is never taken for a duplicate after its window.
import { createHash } from 'node:crypto';
import type { RecordInput } from '../../storage/index.js';

export class DedupWindow {
  private seen = new Map<string, { id: string; expiresAtMs: number }>();

  constructor(private readonly windowMs: number) {}

  get size(): number {
    return this.seen.size;
  }

  lookup(key: string, nowMs: number): string | undefined {
    this.sweep(nowMs);
    const entry = this.seen.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      this.seen.delete(key);
      return undefined;
    }
    return entry.id;
  }

  remember(key: string, id: string, nowMs: number): void {
    this.seen.delete(key);
    this.seen.set(key, { id, expiresAtMs: nowMs + this.windowMs });
  }

  private sweep(nowMs: number): void {
    for (const [k, v] of this.seen) {
      if (v.expiresAtMs > nowMs) break;
      this.seen.delete(k);
    }
  }
}

/** Content-based dedup key: SHA-256 of the payload bytes (as SQS does for the body). */
export function contentDedupKey(rec: RecordInput): string {
  return (
    'sha256:' +
    createHash('sha256')
      .update(rec.value ?? new Uint8Array(0))
      .digest('hex')
  );
}
