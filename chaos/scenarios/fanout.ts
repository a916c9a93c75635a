/**
 * A whole-catalog sync by reference that fans out to slice workflows and continues as new
 * (30,000 targets, 5,000 a slice, 2 slices a run: 6 slices over 3 runs), 1 % of lines naming
 * unknown products. The worker is SIGKILLed during a slice, at the first run's boundary (its last
 * batches answered: the continue-as-new), and during the re-submission window, while the
 * corrections go in by update and by signal.
 */
import { startSync, type SyncOptions } from '../../client/index.ts';
import { seededRandom } from '../../simulators/faults.ts';
import { startOctogenSimulator } from '../../simulators/octogen.ts';
import type { Ctx, RunRecord } from '../context.ts';
import {
  firstPassSettled,
  taken,
  landedCounter,
  pick,
  record,
  settle,
  waitUntil,
  workerEnv,
  Workers,
} from '../harness.ts';
import { checkSync, octogen } from '../invariant.ts';
import { listAll, sleep } from '../scenarios.ts';
import {
  corrections,
  octogenEnv,
  octogenExpectation,
  octogenFixture,
  octogenSimKeys,
  sendBySignal,
  sendByUpdate,
} from './octogen-fixture.ts';

const N = 30_000;
const PER_RUN = 10_000; // sliceSize × slicesPerRun
export const FANOUT_OPTIONS: SyncOptions = {
  sliceSize: 5_000,
  slicesPerRun: 2,
  batchSize: 250,
  concurrency: 2,
  callAttempts: 30,
  callInitialInterval: '100ms',
  callMaximumInterval: '1s',
  resubmissionWindow: '5m',
};

export async function fanOutRun(ctx: Ctx, seed: number, name: string): Promise<RunRecord> {
  const rnd = seededRandom(seed);
  const f = octogenFixture(ctx.dir, `fanout-${seed}`, N, 0.01, rnd);
  const sim = await startOctogenSimulator({ keys: octogenSimKeys, products: f.products, latencyMs: 20 });
  const workers = new Workers(workerEnv(ctx, `chaos-fanout-${seed}`, octogenEnv(sim.url)));
  return record(
    name,
    seed,
    async (details) => {
      workers.spawn();
      const taskQueue = workers.taskQueue;
      const { workflowId } = await startSync(
        ctx.client,
        { provider: 'octogen', targetsRef: { file: f.file }, options: FANOUT_OPTIONS },
        taskQueue,
      );
      const landed = landedCounter(sim.requests, octogen);
      // 1. During a slice of the first run.
      const inSlice = pick(rnd, 500, 4_000);
      await waitUntil(() => landed() >= inSlice, 120_000, `${inSlice} targets taken`, workers);
      await workers.killAndRestart(pick(rnd, 0, 2_000));
      details.push(`killed in a slice at ${inSlice}`);
      // 2. At the run boundary: the first run's last batches answered, continue-as-new next.
      const boundary = PER_RUN - pick(rnd, 0, 2) * 250;
      await waitUntil(() => landed() >= boundary, 180_000, `${boundary} targets taken`, workers);
      await workers.killAndRestart(pick(rnd, 0, 2_000));
      details.push(`killed at the run boundary (${boundary} taken)`);
      // 3. In the window: corrections by update and by signal reach a sync with no worker.
      await firstPassSettled(ctx.client, workflowId, ctx.deadline);
      const listed = await listAll(ctx.client, workflowId, ctx.deadline);
      const fixes = corrections(f, listed);
      await workers.kill();
      // The signal lands while no worker runs; the update goes once the next worker has taken it.
      const half = Math.ceil(fixes.length / 2);
      await sendBySignal(ctx.client, workflowId, fixes.slice(half), ctx.deadline);
      await sleep(pick(rnd, 500, 3_000));
      workers.spawn();
      await taken(ctx, workflowId, N + fixes.length - half);
      await sendByUpdate(ctx.client, workflowId, fixes.slice(0, half), ctx.deadline);
      details.push(`killed in the window; ${fixes.length - half} fixed by signal, ${half} by update`);
      const s = await settle(ctx.client, workflowId, ctx.deadline);
      const fixed = new Set(fixes.map((x) => x.fixes ?? ''));
      const bound = workers.crashes * FANOUT_OPTIONS.concurrency! * FANOUT_OPTIONS.batchSize!;
      const x = octogenExpectation(f, N + fixes.length, { fixed, duplicateBound: bound });
      return checkSync(s.report, s.listed, sim.requests, x, s.abortReason);
    },
    async () => {
      await workers.stop();
      await sim.close();
    },
    workers,
  );
}
