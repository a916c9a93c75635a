import { rmSync } from 'node:fs';
import { openSqliteStore } from '../activities/state/sqlite.ts';
import { openThreadedSqliteStore } from '../activities/state/threaded.ts';
import { benchUuid } from '../bench/products.ts';
const file = '/tmp/sq/ah.sqlite';
for (const f of [file, file + '-wal', file + '-shm']) rmSync(f, { force: true });
const s = openSqliteStore(file);
const N = 100_000;
let t0 = performance.now();
for (let i = 0; i < N; i += 500) {
  const recs = [];
  for (let j = i; j < i + 500; j++) recs.push({ provider: 'octogen', account: 'acct', identity: 'uuid:' + benchUuid('alpha', j), state: 'accepted' as const, contentHash: 'h' + j, syncId: 's1', batch: 'b' + i, at: Date.now() });
  await s.record(recs);
}
console.log('record µs/row', ((performance.now() - t0) * 1000 / N).toFixed(1));
const ids = Array.from({ length: 16000 }, (_, j) => 'uuid:' + benchUuid('alpha', j));
t0 = performance.now();
const m = await s.acceptedHashes('acct', ids);
console.log('acceptedHashes 16k direct ms', (performance.now() - t0).toFixed(0), m.size);
await s.close();
const th = openThreadedSqliteStore(file);
await th.find('octogen', 'x');
t0 = performance.now();
const m2 = await th.acceptedHashes('acct', ids);
console.log('acceptedHashes 16k threaded ms', (performance.now() - t0).toFixed(0), m2.size);
t0 = performance.now();
for (let i = 0; i < N; i += 500) {
  const recs = [];
  for (let j = i; j < i + 500; j++) recs.push({ provider: 'octogen', account: 'acct', identity: 'uuid:' + benchUuid('alpha', j), state: 'accepted' as const, contentHash: 'h2' + j, syncId: 's2', batch: 'b' + i, at: Date.now() });
  await th.record(recs);
}
console.log('threaded update µs/row', ((performance.now() - t0) * 1000 / N).toFixed(1));
await th.close();
