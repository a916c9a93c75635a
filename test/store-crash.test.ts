/**
 * A worker killed between the provider's answer and the store's write (issue 13): the store is
 * held locked by another connection, so answers keep coming while none can be written; the worker
 * is SIGKILLed then. The next worker neither loses an item nor counts one twice.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import { countsAddUp } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { freshStateUrl } from './helpers/state.ts';
import { connectTestEnv, uniqueTaskQueue, type TemporalTestEnv, workerProcessEnv } from './helpers/temporal.ts';
import { spawnWorker, waitFor } from './helpers/processes.ts';

const KEY = 'store-crash-key';
const N = 3_000;
const products = makeOctogenProducts('alpha', N);
let t: TemporalTestEnv;
let sim: OctogenSimulator;
let dir: string;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products, latencyMs: 40 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'catalog-sync-store-crash-'));
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sentUuids = (from = 0) =>
  sim.requests.slice(from).flatMap((r) => (r.body as { targets: { uuid: string }[] }).targets.map((x) => x.uuid));

it('a worker killed after an answer it could not record: the next run sends it again and records each item once', async () => {
  const stateUrl = await freshStateUrl('sqlite', 'store-crash');
  const file = path.join(dir, 'catalog.ndjson');
  writeFileSync(file, `${products.map((p) => JSON.stringify({ uuid: p.uuid })).join('\n')}\n`);
  const taskQueue = uniqueTaskQueue('store-crash');
  const env = {
    ...workerProcessEnv(taskQueue),
    OCTOGEN_BASE_URL: sim.url,
    OCTOGEN_PLATFORM_API_KEY: KEY,
    CATALOG_SYNC_STATE_URL: stateUrl,
  };
  const first = spawnWorker(env);
  const { workflowId } = await startSync(
    t.client,
    {
      provider: 'octogen',
      targetsRef: { file },
      options: { batchSize: 100, concurrency: 1, resubmissionWindow: '0s' },
    },
    taskQueue,
  );
  await waitFor(() => sim.requests.length >= 3, 60_000, `the first calls (worker output: ${first.output()})`);

  // Another connection takes the write lock: the worker's next writes wait on it.
  const lock = new Database(stateUrl.replace(/^sqlite:/, ''));
  lock.pragma('busy_timeout = 10000');
  lock.exec('BEGIN IMMEDIATE');
  const lockedAt = sim.requests.length;
  // The batch in flight is answered; its record waits on the lock, and the lane sends nothing more.
  await waitFor(() => sim.requests.length >= lockedAt + 1, 30_000, 'an answer while the store is locked');
  await new Promise((r) => setTimeout(r, 1_000));
  expect(sim.requests.length).toBe(lockedAt + 1);
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  const unrecorded = new Set(sentUuids(lockedAt));
  lock.exec('ROLLBACK');
  lock.close();
  const callsAtKill = sim.requests.length;

  const second = spawnWorker(env);
  try {
    const { report } = await awaitReport(t.client, workflowId);
    // Counted once: exactly N accepted, nothing pending.
    expect(report.counts).toMatchObject({ submitted: N, accepted: N, rejected: 0, failed: 0, pending: 0 });
    expect(countsAddUp(report.counts)).toBe(true);
    // The answers the store never took were sent again after the kill.
    const after = new Set(sentUuids(callsAtKill));
    expect([...unrecorded].every((u) => after.has(u))).toBe(true);
  } finally {
    second.child.kill('SIGKILL');
  }
  // Not lost: every item has its row, accepted by this sync, once.
  const store = new Database(stateUrl.replace(/^sqlite:/, ''), { readonly: true });
  try {
    const rows = store
      .prepare("SELECT identity, state, sync_id, writes FROM target_state WHERE provider = 'octogen'")
      .all() as { identity: string; state: string; sync_id: string; writes: number }[];
    expect(rows).toHaveLength(N);
    expect(rows.every((r) => r.state === 'accepted' && r.sync_id === workflowId)).toBe(true);
    expect(new Set(rows.map((r) => r.identity))).toEqual(new Set(products.map((p) => `uuid:${p.uuid}`)));
  } finally {
    store.close();
  }
}, 120_000);
