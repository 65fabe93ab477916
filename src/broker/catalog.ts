// The one namespace of topics, queues and exchanges, persisted atomically as catalog.json.
// Creating a name is two steps (reserve, then commit) so two concurrent creates of one name,
// even of different kinds, cannot both touch storage.
import { LIMITS, WharfError, validateName } from '../common/index.js';
import type { Storage } from '../storage/index.js';

export type CatalogKind = 'topic' | 'queue' | 'exchange';

export interface CatalogEntry {
  name: string;
  kind: CatalogKind;
  /** The kind's resolved options; JSON. */
  config: Record<string, unknown>;
  createdAt: number;
}

const CATALOG_PATH = ['catalog.json'];
const FORMAT_VERSION = 1;

export class Catalog {
  private readonly entries = new Map<string, CatalogEntry>();
  /** Names claimed and not in entries: a create in progress, or a deletion still removing files (removeAndHold). */
  private readonly reserved = new Map<string, 'creating' | 'deleting'>();
  /** Serialises writes so the file on disk always holds the latest map. */
  private writeChain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly storage: Storage,
    private readonly maxNames: number,
  ) {}

  static async load(storage: Storage, maxNames: number = LIMITS.maxNames): Promise<Catalog> {
    const catalog = new Catalog(storage, maxNames);
    const bytes = await storage.readMeta(CATALOG_PATH);
    if (bytes !== null) {
      let doc: { version?: number; entries?: CatalogEntry[] };
      try {
        doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof doc;
      } catch (err) {
        throw new WharfError('CORRUPT_DATA', 'catalog.json is not valid JSON; restore it from a backup', {
          cause: err,
        });
      }
      if (doc.version !== FORMAT_VERSION || !Array.isArray(doc.entries)) {
        throw new WharfError('CORRUPT_DATA', `catalog.json has an unknown format (version ${String(doc.version)})`);
      }
      for (const e of doc.entries) catalog.entries.set(e.name, e);
    }
    return catalog;
  }

  get(name: string): CatalogEntry | undefined {
    return this.entries.get(name);
  }

  /** The entry of that kind, or NOT_FOUND saying what the name is instead. */
  require(name: string, kind: CatalogKind): CatalogEntry {
    const entry = this.entries.get(name);
    if (entry === undefined) {
      throw new WharfError('NOT_FOUND', `no ${kind} named ${JSON.stringify(name)}; create it first`);
    }
    if (entry.kind !== kind) {
      throw new WharfError('NOT_FOUND', `no ${kind} named ${JSON.stringify(name)}: that name is a ${entry.kind}`);
    }
    return entry;
  }

  list(kind?: CatalogKind): CatalogEntry[] {
    const out: CatalogEntry[] = [];
    for (const e of this.entries.values()) if (kind === undefined || e.kind === kind) out.push(e);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Claims a name synchronously: INVALID_ARGUMENT for a bad name, ALREADY_EXISTS when taken (by any
   * kind, or by a create in progress), LIMIT_EXCEEDED past maxNames. Follow with commit() or release().
   */
  reserve(name: string, kind: CatalogKind): void {
    validateName(name, `${kind} name`);
    const existing = this.entries.get(name);
    if (existing !== undefined || this.reserved.has(name)) {
      const what = existing
        ? `a ${existing.kind}`
        : this.reserved.get(name) === 'deleting'
          ? 'being deleted'
          : 'being created';
      throw new WharfError(
        'ALREADY_EXISTS',
        `${JSON.stringify(name)} already exists (${what}); pick another name or delete it first`,
      );
    }
    if (this.entries.size + this.reserved.size >= this.maxNames) {
      throw new WharfError(
        'LIMIT_EXCEEDED',
        `the broker already holds ${this.maxNames} topics, queues and exchanges (maxNames); delete some first`,
        {
          details: { limit: 'maxNames', value: this.maxNames },
        },
      );
    }
    this.reserved.set(name, 'creating');
  }

  release(name: string): void {
    this.reserved.delete(name);
  }

  /** Adds a reserved name durably. */
  async commit(entry: CatalogEntry): Promise<void> {
    if (!this.reserved.has(entry.name)) {
      throw new WharfError('INTERNAL', `catalog commit of ${entry.name} without a reservation`);
    }
    this.entries.set(entry.name, entry);
    this.reserved.delete(entry.name);
    try {
      await this.persist();
    } catch (err) {
      this.entries.delete(entry.name);
      throw err;
    }
  }

  /** Replaces the config of an existing entry durably. */
  async update(name: string, config: Record<string, unknown>): Promise<void> {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new WharfError('NOT_FOUND', `no name ${JSON.stringify(name)} to update`);
    this.entries.set(name, { ...entry, config });
    await this.persist();
  }

  async remove(name: string): Promise<void> {
    if (!this.entries.delete(name)) return;
    await this.persist();
  }

  /**
   * remove(), with the name kept reserved until the returned release is called: a deletion that
   * goes on removing the name's files after the catalog forgot it must not race a create of the
   * same name into those files (a create meanwhile is ALREADY_EXISTS, "being deleted").
   */
  async removeAndHold(name: string): Promise<() => void> {
    if (!this.entries.has(name)) return () => undefined;
    this.reserved.set(name, 'deleting');
    const release = (): void => void this.reserved.delete(name);
    try {
      await this.remove(name);
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  private persist(): Promise<void> {
    const write = this.writeChain.then(() => {
      const doc = { version: FORMAT_VERSION, entries: [...this.entries.values()] };
      return this.storage.writeMeta(CATALOG_PATH, Buffer.from(JSON.stringify(doc), 'utf8'));
    });
    // A failed write must not poison later ones; the caller of this write sees the failure.
    this.writeChain = write.catch(() => undefined);
    return write;
  }
}
