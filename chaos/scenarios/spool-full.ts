/**
 * The spool's disk full (issue 14): an inline Octogen request too large for history (3,000 targets,
 * about 450 KB) is written to the spool (activities/spool.ts) before its sync starts. The spool
 * folder sits on a small tmpfs:
 *
 *   1. filled to the last byte: the start fails in one line naming the spool folder and the full
 *      disk; no sync was started under the request's key and no partial file is left behind;
 *   2. freed: the same request (same key) starts, and the tmpfs is filled again while the workers
 *      read the spooled file: the sync completes with the promise kept (chaos/invariant.ts), and it
 *      deletes its spooled file when it closes.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startSync, syncWorkflowId, type SyncOptions } from '../../client/index.ts';
import { seededRandom } from '../../simulators/faults.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenProduct } from '../../simulators/octogen.ts';
import type { Ctx, RunRecord } from '../context.ts';
import { fill, mountTmpfs, unmount } from '../disk.ts';
import { pick, record, settle, waitUntil, workerEnv, Workers } from '../harness.ts';
import { checkSync, octogen } from '../invariant.ts';
import { CHAOS_CATALOG, sleep, until } from '../scenarios.ts';
import { octogenEnv, octogenSimKeys } from './octogen-fixture.ts';

const N = 3_000;
const OPTIONS: SyncOptions = {
  batchSize: 100,
  concurrency: 4,
  callAttempts: 40,
  callInitialInterval: '100ms',
  callMaximumInterval: '1s',
  resubmissionWindow: '0s',
};
/** What a full spool says (activities/spool.ts, spoolWriteError). */
const SPOOL_FULL =
  /^cannot write \d+ targets to the spool folder .+ \(no space left on its disk\): nothing was started/;

const productCache = new Map<number, OctogenProduct[]>();

export async function spoolFullRun(ctx: Ctx, seed: number, name: string): Promise<RunRecord> {
  const rnd = seededRandom(seed);
  const products = productCache.get(N) ?? makeOctogenProducts(CHAOS_CATALOG, N);
  productCache.set(N, products);
  // A `version` is never sent to Octogen: here it only makes the request too large for history.
  const targets = products.map((p, i) => ({ uuid: p.uuid, version: `v${i}-${'x'.repeat(100)}` }));
  const sim = await startOctogenSimulator({ keys: octogenSimKeys, products, latencyMs: 50 });
  const mount = path.join(ctx.dir, `spool-tmpfs-${seed}`);
  const spool = path.join(mount, 'spool');
  const filler = path.join(mount, 'filler');
  const env = workerEnv(ctx, `chaos-spool-${seed}`, octogenEnv(sim.url, { CATALOG_SYNC_SPOOL_DIR: spool }));
  const workers = new Workers(env);
  const before = process.env.CATALOG_SYNC_SPOOL_DIR;
  let mounted = false;
  return record(
    name,
    seed,
    async (details) => {
      mountTmpfs(mount, '2m', '0700');
      mounted = true;
      // The client writes the spool: this process is the client.
      process.env.CATALOG_SYNC_SPOOL_DIR = spool;
      mkdirSync(spool, { mode: 0o700 });
      workers.spawn();
      const key = `chaos-spool-${seed}`;
      const request = { provider: 'octogen' as const, targets, key, options: OPTIONS };
      const problems: string[] = [];

      // 1. The spool's disk full: a clear failure, nothing started, nothing left behind.
      const filled = fill(filler);
      let refused = '';
      try {
        await startSync(ctx.client, request, workers.taskQueue);
        problems.push('the start succeeded on a full spool');
      } catch (err) {
        refused = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
      }
      details.push(`spool full (${(filled / 1e6).toFixed(1)} MB of filler): "${refused.slice(0, 120)}..."`);
      if (!SPOOL_FULL.test(refused)) problems.push(`a full spool failed the start with "${refused}"`);
      const left = readdirSync(spool);
      if (left.length > 0) problems.push(`${left.length} files left in the spool after the failed start`);
      const started = await ctx.client.workflow
        .getHandle(syncWorkflowId('octogen', key))
        .describe()
        .then(
          () => true,
          () => false,
        );
      if (started) problems.push('a sync was started though its targets could not be spooled');

      // 2. Space back: the same request starts; the disk fills again while the workers read.
      rmSync(filler, { force: true });
      const { workflowId } = await startSync(ctx.client, request, workers.taskQueue);
      const calls = pick(rnd, 1, 10);
      await waitUntil(() => sim.requests.length >= calls, 120_000, `${calls} calls`, workers);
      fill(filler);
      details.push(`started once freed; refilled after ${calls} calls`);
      await sleep(pick(rnd, 500, 3_000));
      rmSync(filler, { force: true });
      const s = await settle(ctx.client, workflowId, ctx.deadline);
      const evaluation = checkSync(
        s.report,
        s.listed,
        sim.requests,
        {
          submitted: N,
          ...octogen,
          identityOf: (seq) => (products[seq] ? `uuid:${products[seq].uuid}` : undefined),
          mayReject: () => false,
          duplicateBound: 0,
        },
        s.abortReason,
      );
      // The sync deletes its spooled file when it closes.
      if (!(await until(() => readdirSync(spool).length === 0, 10_000)))
        problems.push(`the spooled file was not deleted when the sync closed (${readdirSync(spool).join(', ')})`);
      const all = [...evaluation.problems, ...problems];
      return { ...evaluation, invariantOk: all.length === 0, problems: all };
    },
    async () => {
      await workers.stop();
      if (before === undefined) delete process.env.CATALOG_SYNC_SPOOL_DIR;
      else process.env.CATALOG_SYNC_SPOOL_DIR = before;
      await sim.close();
      if (mounted) unmount(mount);
    },
    workers,
  );
}
