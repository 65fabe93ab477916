// Durable bindings: an append-only journal of bind / unbind / drop-exchange entries, replayed on
// open and rewritten to the live set when it has grown to twice that. Exchanges themselves live in
// the broker catalog; a binding whose exchange is not in the catalog is dropped at load.
import { WharfError } from '../../common/index.js';
import type { Journal } from '../../storage/index.js';
import type { BindingInfo } from '../exchange-types.js';
import { isDroppedWith } from './binding.js';

type Entry = { t: 'bind'; b: BindingInfo } | { t: 'unbind'; id: string } | { t: 'drop'; exchange: string };

const encode = (e: Entry): Uint8Array => Buffer.from(JSON.stringify(e), 'utf8');

export class BindingStore {
  private liveCount = 0;
  private entryCount = 0;
  /** Highest binding number ever journaled (also of unbound ones), so ids are never reused. */
  highestSeq = 0;

  constructor(private readonly journal: Journal) {}

  /** The bindings as of the last durable entry, for exchanges that still exist. */
  load(exchangeExists: (name: string) => boolean): BindingInfo[] {
    const live = new Map<string, BindingInfo>();
    for (const bytes of this.journal.entries()) {
      this.entryCount++;
      let e: Entry;
      try {
        e = JSON.parse(Buffer.from(bytes).toString('utf8')) as Entry;
      } catch (err) {
        throw new WharfError('CORRUPT_DATA', 'an exchange binding journal entry is not valid JSON', { cause: err });
      }
      if (e.t === 'bind') {
        live.set(e.b.id, e.b);
        this.highestSeq = Math.max(this.highestSeq, Number(e.b.id.slice(e.b.id.lastIndexOf('.') + 1)) || 0);
      } else if (e.t === 'unbind') live.delete(e.id);
      else for (const [id, b] of live) if (isDroppedWith(b, e.exchange)) live.delete(id);
    }
    const out = [...live.values()].filter((b) => exchangeExists(b.exchange));
    this.liveCount = out.length;
    return out;
  }

  bind(binding: BindingInfo): Promise<void> {
    this.liveCount++;
    return this.append({ t: 'bind', b: binding });
  }

  unbind(id: string): Promise<void> {
    this.liveCount--;
    return this.append({ t: 'unbind', id });
  }

  /** Removes every binding of the exchange and every binding to it. */
  drop(exchange: string, removedCount: number): Promise<void> {
    this.liveCount -= removedCount;
    return this.append({ t: 'drop', exchange });
  }

  /** Rewrites the journal to exactly these bindings. Only on open, before any append. */
  async compact(bindings: BindingInfo[]): Promise<void> {
    // A compacted journal forgets unbound ids: keep the highest as a bind + unbind pair.
    const marker: BindingInfo = { id: `__seq.${this.highestSeq}`, exchange: '', target: { queue: '_' }, createdAt: 0 };
    const entries = bindings.map((b) => encode({ t: 'bind', b }));
    entries.push(encode({ t: 'bind', b: marker }), encode({ t: 'unbind', id: marker.id }));
    await this.journal.rewrite(entries);
    this.entryCount = bindings.length;
    this.liveCount = bindings.length;
  }

  /** Whether the journal holds more than twice the live entries (and enough to bother). */
  get wantsCompaction(): boolean {
    return this.entryCount > 1000 && this.entryCount > 2 * this.liveCount;
  }

  close(): Promise<void> {
    return this.journal.close();
  }

  private append(e: Entry): Promise<void> {
    this.entryCount++;
    // Appends run concurrently and share fsyncs (group commit); the journal keeps call order.
    return this.journal.append(encode(e));
  }
}
