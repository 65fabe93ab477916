import { it, expect } from 'vitest';
import { openDiskStorage, openMemoryStorage } from '../../src/storage/index.js';
import { tempDir, rec } from './helpers.js';
it('x', async () => {
  const s = await openDiskStorage(tempDir()); const m = openMemoryStorage();
  const o = { fsync: 'always', segmentBytes: 100000 } as any;
  const d = await s.openLog(['a'], o); const ml = await m.openLog(['a'], o);
  for (let i = 0; i < 5; i++) { await d.append([rec('x'.repeat(50))]); await ml.append([rec('x'.repeat(50))]); }
  console.log((await d.read(0, { maxBytes: 200 })).length, (await ml.read(0, { maxBytes: 200 })).length);
  await s.close();
});
