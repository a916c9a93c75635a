import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../activities/state/sqlite.ts';
import { benchUuid } from '../bench/products.ts';
const file = '/tmp/sq/grp.sqlite';
for (const f of [file, file + '-wal', file + '-shm']) rmSync(f, { force: true });
const s = openSqliteStore(file);
if (process.env.CKPT) { const d = new Database(file); d.close(); }
const N = 100_000, G = Number(process.env.G ?? 500);
const pass = async (tag: string) => {
  const t0 = performance.now();
  for (let i = 0; i < N; i += G) {
    const recs = [];
    for (let j = i; j < i + G; j++) recs.push({ provider: 'octogen', account: 'acct', identity: 'uuid:' + benchUuid('alpha', j), state: 'accepted' as const, contentHash: tag + j, syncId: 's' + tag, batch: 'b' + i, at: Date.now() });
    await s.record(recs);
  }
  return ((performance.now() - t0) * 1000 / N).toFixed(1);
};
console.log('G', G, 'insert', await pass('a'), 'update', await pass('b'), 'update', await pass('c'));
