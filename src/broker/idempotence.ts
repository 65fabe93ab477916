// Idempotent producers: a message carrying (producerId, sequence) that this broker already stored
// for the same target resolves with the original result (duplicate: true) instead of being stored
// again, so a client may re-send a batch whose confirm it lost in a disconnect or a server crash.
// Results are journaled after the publish is durable and before it is confirmed, and rebuilt on
// open. Known gap: a crash between the log's fsync and this journal's fsync forgets that batch,
// so its retry is stored twice (a window of one group commit); closing it needs the sequence in
// the record batch header (storage's producer fields) and a scan on recovery.
import { WharfError } from '../common/index.js';
import type { Journal, Storage } from '../storage/index.js';
import type { FsyncPolicy } from '../storage/index.js';
import type { MessageInput, PublishResult } from './types.js';

/** Results remembered per (target, producerId): enough for a client's whole in-flight window. */
const MAX_RESULTS_PER_PRODUCER = 65_536;
/** Producers remembered per broker; the least recently used is forgotten first. */
const MAX_PRODUCERS = 10_000;
/** Journal entries before it is compacted into a snapshot of what is remembered. */
const COMPACT_AFTER_ENTRIES = 100_000;

type Row = [target: string, producerId: string, sequence: number, id: string, partition: number, offset: number];

interface ProducerState {
  results: Map<number, PublishResult>;
}

export class ProducerDedupe {
  private readonly producers = new Map<string, ProducerState>();
  private readonly inflight = new Map<string, Promise<PublishResult>>();
  private entriesSinceCompact = 0;
  private chain: Promise<void> = Promise.resolve();

  private constructor(private readonly journal: Journal) {}

  static async open(storage: Storage, options: { fsync: FsyncPolicy; fsyncIntervalMs: number }): Promise<ProducerDedupe> {
    const d = new ProducerDedupe(await storage.openJournal(['idempotence'], options));
    for (const entry of d.journal.entries()) {
      let rows: Row[];
      try {
        rows = JSON.parse(Buffer.from(entry).toString('utf8')) as Row[];
      } catch (err) {
        throw new WharfError('CORRUPT_DATA', 'the idempotence journal holds an entry that is not JSON; restore the data directory from a backup', { cause: err });
      }
      for (const r of rows) d.remember(r);
      d.entriesSinceCompact++;
    }
    return d;
  }

  /** True when any message asks for idempotence. */
  static wants(messages: readonly MessageInput[]): boolean {
    for (const m of messages) if (m !== null && typeof m === 'object' && typeof m.producerId === 'string' && typeof m.sequence === 'number') return true;
    return false;
  }

  private remember(r: Row): void {
    const key = `${r[0]}\u0000${r[1]}`;
    let st = this.producers.get(key);
    if (st === undefined) {
      st = { results: new Map() };
      if (this.producers.size >= MAX_PRODUCERS) this.producers.delete(this.producers.keys().next().value!);
    } else {
      this.producers.delete(key); // re-insert: most recently used last
    }
    this.producers.set(key, st);
    const res: PublishResult = { id: r[3] };
    if (r[4] >= 0) res.partition = r[4];
    if (r[5] >= 0) res.offset = r[5];
    st.results.set(r[2], res);
    if (st.results.size > MAX_RESULTS_PER_PRODUCER) st.results.delete(st.results.keys().next().value!);
  }

  private lookup(target: string, m: MessageInput): PublishResult | undefined {
    return this.producers.get(`${target}\u0000${m.producerId}`)?.results.get(m.sequence!);
  }

  /** Publishes the messages not seen before through `publish`; repeats resolve with the original's result. */
  async publish(target: string, messages: MessageInput[], publish: (fresh: MessageInput[]) => Promise<PublishResult[]>): Promise<PublishResult[]> {
    const out = new Array<PublishResult | Promise<PublishResult>>(messages.length);
    const fresh: MessageInput[] = [];
    const freshIndex: number[] = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (typeof m?.producerId !== 'string' || typeof m.sequence !== 'number') {
        fresh.push(m);
        freshIndex.push(i);
        continue;
      }
      const seen = this.lookup(target, m);
      const flying = this.inflight.get(`${target}\u0000${m.producerId}\u0000${m.sequence}`);
      if (seen !== undefined) out[i] = { ...seen, duplicate: true };
      else if (flying !== undefined) out[i] = flying.then((r) => ({ ...r, duplicate: true }));
      else {
        fresh.push(m);
        freshIndex.push(i);
      }
    }
    if (fresh.length > 0) {
      const run = (async () => {
        const results = await publish(fresh);
        await this.record(target, fresh, results);
        return results;
      })();
      const keys: string[] = [];
      fresh.forEach((m, k) => {
        if (typeof m?.producerId !== 'string' || typeof m.sequence !== 'number') return;
        const key = `${target}\u0000${m.producerId}\u0000${m.sequence}`;
        keys.push(key);
        this.inflight.set(key, run.then((rs) => rs[k]));
      });
      try {
        const results = await run;
        freshIndex.forEach((i, k) => (out[i] = results[k]));
      } finally {
        for (const key of keys) this.inflight.delete(key);
      }
    }
    return Promise.all(out);
  }

  private async record(target: string, messages: MessageInput[], results: PublishResult[]): Promise<void> {
    const rows: Row[] = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (typeof m.producerId !== 'string' || typeof m.sequence !== 'number' || results[i].duplicate === true) continue;
      const r: Row = [target, m.producerId, m.sequence, results[i].id, results[i].partition ?? -1, results[i].offset ?? -1];
      rows.push(r);
      this.remember(r);
    }
    if (rows.length === 0) return;
    await this.journal.append(Buffer.from(JSON.stringify(rows), 'utf8'));
    if (++this.entriesSinceCompact >= COMPACT_AFTER_ENTRIES) this.compact();
  }

  private compact(): void {
    this.entriesSinceCompact = 0;
    const rows: Row[] = [];
    for (const [key, st] of this.producers) {
      const [target, producerId] = key.split('\u0000');
      for (const [seq, r] of st.results) rows.push([target, producerId, seq, r.id, r.partition ?? -1, r.offset ?? -1]);
    }
    this.chain = this.chain.then(() => this.journal.rewrite([Buffer.from(JSON.stringify(rows), 'utf8')])).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.chain;
    await this.journal.close();
  }
}
