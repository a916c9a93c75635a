/**
 * Three syncs at once sharing one Octogen account budget (OCTOGEN_REQUESTS_PER_MINUTE on the
 * workers, requestsPerMinute on the simulator), on two workers, one SIGKILLed mid-way: not one
 * 429 from the simulator's budget, and every target of every sync accounted for.
 */
import { startSync, type SyncOptions } from '../../client/index.ts';
import { seededRandom } from '../../simulators/faults.ts';
import { startOctogenSimulator } from '../../simulators/octogen.ts';
import type { Ctx, RunRecord } from '../context.ts';
import { pick, record, settle, waitUntil, workerEnv, Workers } from '../harness.ts';
import { checkSync } from '../invariant.ts';
import type { Evaluation } from '../scenarios.ts';
import { octogenEnv, octogenExpectation, octogenFixture, octogenSimKeys } from './octogen-fixture.ts';

const PER_SYNC = 500;
const SYNCS = 3;
const BUDGET = 120;
export const BUDGET_OPTIONS: SyncOptions = {
  batchSize: 10,
  concurrency: 4,
  callAttempts: 30,
  callInitialInterval: '100ms',
  callMaximumInterval: '1s',
  resubmissionWindow: '0s',
};

export async function budgetRun(ctx: Ctx, seed: number, name: string): Promise<RunRecord> {
  const rnd = seededRandom(seed);
  // One catalog; each sync takes its own third of it.
  const f = octogenFixture(ctx.dir, `budget-${seed}`, PER_SYNC * SYNCS, 0, rnd);
  const sim = await startOctogenSimulator({
    keys: octogenSimKeys,
    products: f.products,
    latencyMs: 20,
    requestsPerMinute: BUDGET,
  });
  const env = workerEnv(
    ctx,
    `chaos-budget-${seed}`,
    octogenEnv(sim.url, { OCTOGEN_REQUESTS_PER_MINUTE: String(BUDGET) }),
  );
  const workers = new Workers(env);
  return record(
    name,
    seed,
    async (details) => {
      workers.spawn();
      workers.spawn();
      const ids = await Promise.all(
        Array.from({ length: SYNCS }, (_, i) =>
          startSync(
            ctx.client,
            {
              provider: 'octogen',
              targets: f.products.slice(i * PER_SYNC, (i + 1) * PER_SYNC).map((p) => ({ uuid: p.uuid })),
              options: BUDGET_OPTIONS,
            },
            workers.taskQueue,
          ),
        ),
      );
      const calls = pick(rnd, 10, 60);
      await waitUntil(() => sim.requests.length >= calls, 120_000, `${calls} calls`, workers);
      await workers.kill(pick(rnd, 0, 1));
      details.push(
        `${SYNCS} syncs × ${PER_SYNC}, budget ${BUDGET}/min; one of two workers killed after ${calls} calls`,
      );
      const evs: Evaluation[] = [];
      for (const [i, { workflowId }] of ids.entries()) {
        const s = await settle(ctx.client, workflowId, ctx.deadline);
        const offset = i * PER_SYNC;
        const x = octogenExpectation(f, PER_SYNC, {
          identityOf: (seq) => `uuid:${f.products[offset + seq]?.uuid ?? ''}`,
          duplicateBound: workers.crashes * BUDGET_OPTIONS.concurrency! * BUDGET_OPTIONS.batchSize!,
        });
        evs.push(checkSync(s.report, s.listed, sim.requests, x, s.abortReason));
      }
      const ev = combine(evs);
      details.push(`${sim.rateLimited} × 429 from the budget`);
      if (sim.rateLimited > 0) ev.problems.push(`${sim.rateLimited} × 429 from the simulator's budget`);
      ev.invariantOk = ev.problems.length === 0;
      return ev;
    },
    async () => {
      await workers.stop();
      await sim.close();
    },
    workers,
  );
}

/** Several syncs' evaluations as one row (duplicates counted once: they share the request log). */
export function combine(evs: Evaluation[]): Evaluation {
  const first = evs[0]!;
  const counts = { ...first.counts };
  for (const e of evs.slice(1))
    for (const k of Object.keys(counts) as (keyof typeof counts)[]) counts[k] += e.counts[k];
  const problems = evs.flatMap((e) => e.problems);
  return {
    counts,
    invariantOk: problems.length === 0,
    lost: evs.reduce((n, e) => n + e.lost, 0),
    inTwoStates: evs.reduce((n, e) => n + e.inTwoStates, 0),
    duplicateDeliveries: first.duplicateDeliveries,
    processedTwice: first.processedTwice,
    providerCalls: first.providerCalls,
    problems,
  };
}
