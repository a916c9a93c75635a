/**
 * Rejections and re-submissions under fire: 3,000 targets, 10 % naming unknown products, under a
 * 503/429 storm; the worker is killed in the first pass; then every rejection is corrected in
 * chunks, alternately by update (resubmit) and by signal (handle.signal('resubmit', {items})),
 * while the worker is killed again and the dev server restarted. Supersession must stay exact.
 */
import type { Client } from '@temporalio/client';
import { startSync, type ResubmissionItem, type SyncOptions } from '../../client/index.ts';
import { seededRandom } from '../../simulators/faults.ts';
import { startOctogenSimulator } from '../../simulators/octogen.ts';
import { restartServer, type Ctx, type RunRecord } from '../context.ts';
import { firstPassSettled, pick, record, settle, taken, waitUntil, workerEnv, Workers } from '../harness.ts';
import { checkSync } from '../invariant.ts';
import { listAll, STORMS } from '../scenarios.ts';
import {
  corrections,
  octogenEnv,
  octogenExpectation,
  octogenFixture,
  octogenSimKeys,
  sendBySignal,
  sendByUpdate,
} from './octogen-fixture.ts';

const N = 3_000;
const CHUNK = 50;
export const RESUBMIT_OPTIONS: SyncOptions = {
  batchSize: 100,
  concurrency: 4,
  callAttempts: 30,
  callInitialInterval: '100ms',
  callMaximumInterval: '1s',
  resubmissionWindow: '5m',
};
const STORM = STORMS[0]!; // 503 + 429 with Retry-After

export async function resubmitRun(ctx: Ctx, seed: number, name: string, n = N): Promise<RunRecord> {
  const rnd = seededRandom(seed);
  const f = octogenFixture(ctx.dir, `resubmit-${seed}`, n, 0.1, rnd);
  const sim = await startOctogenSimulator({ keys: octogenSimKeys, products: f.products, latencyMs: 20 });
  const workers = new Workers(workerEnv(ctx, `chaos-resubmit-${seed}`, octogenEnv(sim.url)));
  let restarts = 0;
  return record(
    name,
    seed,
    async (details) => {
      sim.faults.rate(0.2, STORM.faults, seed);
      workers.spawn();
      const { workflowId } = await startSync(
        ctx.client,
        { provider: 'octogen', targetsRef: { file: f.file }, options: RESUBMIT_OPTIONS },
        workers.taskQueue,
      );
      const calls = pick(rnd, 2, Math.max(3, n / 200));
      await waitUntil(() => sim.requests.length >= calls, 120_000, `${calls} calls`, workers);
      await workers.killAndRestart(pick(rnd, 0, 2_000));
      details.push(`storm 503/429 at 0.2; killed after ${calls} calls`);
      await firstPassSettled(ctx.client, workflowId, ctx.deadline);
      const fixes = corrections(f, await listAll(ctx.client, workflowId, ctx.deadline));
      const chunks = Array.from({ length: Math.ceil(fixes.length / CHUNK) }, (_, i) =>
        fixes.slice(i * CHUNK, (i + 1) * CHUNK),
      );
      const killAt = pick(rnd, 0, chunks.length - 1);
      const restartAt = pick(rnd, 0, chunks.length - 1);
      let submitted = n;
      for (const [i, chunk] of chunks.entries()) {
        if (i === killAt) await workers.killAndRestart(pick(rnd, 0, 2_000));
        if (i === restartAt) {
          await restartServer(ctx, pick(rnd, 500, 3_000));
          restarts += 1;
        }
        submitted += chunk.length;
        await correct(ctx, workflowId, chunk, i % 2 === 0 ? 'update' : 'signal', submitted);
      }
      details.push(
        `${fixes.length} fixed in ${chunks.length} chunks; killed at chunk ${killAt}, server restarted at chunk ${restartAt}`,
      );
      const s = await settle(ctx.client, workflowId, ctx.deadline);
      if (workers.selfExits > 0)
        details.push(`${workers.selfExits} worker(s) exited on their own and were started again`);
      const fixed = new Set(fixes.map((x) => x.fixes ?? ''));
      const bound = (workers.crashes + restarts) * RESUBMIT_OPTIONS.concurrency! * RESUBMIT_OPTIONS.batchSize!;
      return checkSync(
        s.report,
        s.listed,
        sim.requests,
        octogenExpectation(f, n + fixes.length, { fixed, duplicateBound: bound }),
        s.abortReason,
      );
    },
    async () => {
      await workers.stop();
      await sim.close();
    },
    workers,
  );
}

/** One re-submission, waited for until the sync has taken it (never two in one workflow task). */
async function correct(
  ctx: Ctx,
  workflowId: string,
  items: ResubmissionItem[],
  via: 'update' | 'signal',
  submitted: number,
): Promise<void> {
  const client: Client = ctx.client;
  if (via === 'update') await sendByUpdate(client, workflowId, items, ctx.deadline);
  else await sendBySignal(client, workflowId, items, ctx.deadline);
  await taken(ctx, workflowId, submitted);
}
