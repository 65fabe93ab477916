import { afterEach, describe, expect, it } from 'vitest';
import type { Storage } from '../../src/storage/index.js';
import { dec, enc, rec, storageKinds, type StorageKind } from './helpers.js';

for (const { name, make: makeKind } of storageKinds()) {
  describe(`${name} storage basics`, () => {
    let kind: StorageKind;
    let storage: Storage;
    afterEach(async () => {
      await storage?.close();
      kind?.cleanup();
    });
    async function setup(): Promise<void> {
      kind = makeKind();
      storage = await kind.open();
    }

    it('appends records with dense offsets and reads them back', async () => {
      await setup();
      const log = await storage.openLog(['topics', 'orders', '0'], { fsync: 'always' } as never);
      expect(log.startOffset).toBe(0);
      expect(log.endOffset).toBe(0);
      const a = await log.append([rec('a', 10), rec('b', 20)]);
      const b = await log.append([
        { key: enc('k'), value: null, headers: [{ key: 'h', value: enc('v') }], timestampMs: 30 },
      ]);
      expect(a).toEqual({ baseOffset: 0, lastOffset: 1 });
      expect(b).toEqual({ baseOffset: 2, lastOffset: 2 });
      expect(log.endOffset).toBe(3);
      const records = await log.read(0, { maxBytes: 1 << 20 });
      expect(records.map((r) => [r.offset, dec(r.value), r.timestampMs])).toEqual([
        [0, 'a', 10],
        [1, 'b', 20],
        [2, null, 30],
      ]);
      expect(dec(records[2].key)).toBe('k');
      expect(records[2].headers.map((h) => [h.key, dec(h.value)])).toEqual([['h', 'v']]);
      expect((await log.read(1, { maxBytes: 1 << 20 })).map((r) => r.offset)).toEqual([1, 2]);
      expect(await log.read(3, { maxBytes: 1 << 20 })).toEqual([]);
      expect(await log.offsetForTimestamp(15)).toBe(1);
      expect(await log.offsetForTimestamp(31)).toBe(3);
      expect((await log.readBatches(1, { maxBytes: 1 << 20 })).length).toBe(2);
      await log.close();
      const again = await storage.openLog(['topics', 'orders', '0'], {} as never);
      expect(again.endOffset).toBe(3);
      expect((await again.read(0, { maxBytes: 1 << 20 })).length).toBe(3);
      await again.close();
    });

    it('keeps journals and meta', async () => {
      await setup();
      const j = await storage.openJournal(['queues', 'q', 'state'], { fsync: 'always', fsyncIntervalMs: 1000 });
      await Promise.all([j.append(enc('one')), j.append(enc('two'))]);
      expect([...j.entries()].map(dec)).toEqual([]); // as recovered on open
      await j.close();
      const j2 = await storage.openJournal(['queues', 'q', 'state'], { fsync: 'always', fsyncIntervalMs: 1000 });
      expect([...j2.entries()].map(dec)).toEqual(['one', 'two']);
      await j2.rewrite([enc('snap')]);
      await j2.append(enc('three'));
      await j2.close();
      const j3 = await storage.openJournal(['queues', 'q', 'state'], { fsync: 'always', fsyncIntervalMs: 1000 });
      expect([...j3.entries()].map(dec)).toEqual(['snap', 'three']);
      await j3.close();

      expect(await storage.readMeta(['topics', 'orders', 'meta'])).toBeNull();
      await storage.writeMeta(['topics', 'orders', 'meta'], enc('{"partitions":3}'));
      expect(dec(await storage.readMeta(['topics', 'orders', 'meta']))).toBe('{"partitions":3}');
      expect(await storage.list(['topics'])).toEqual(['orders']);
      expect(await storage.list([])).toEqual(['queues', 'topics']);
      await storage.remove(['topics', 'orders']);
      expect(await storage.list(['topics'])).toEqual([]);
      expect(await storage.readMeta(['topics', 'orders', 'meta'])).toBeNull();
    });
  });
}
