/**
 * The target-state store's rows of `npm run bench` (issue 13), side by side in one run on one
 * simulator:
 *
 * - a full Octogen sync by reference on a worker without the store, then the same on a worker
 *   recording every answer in a fresh SQLite store: the store's cost is the ratio of the two;
 * - on the store's worker, a `changedOnly` sync of the same catalog with 1 % of the versions
 *   changed: what it sends (from the simulator's record) and its time against the full sync's;
 * - a dry run of the whole file by reference (`dryRunSync`, no worker, no provider).
 */
import path from 'node:path';
import { dryRunSync } from '../client/index.ts';
import type { Counts, SyncOptions } from '../contracts/index.ts';
import { CATALOG, K, octogenSim, syncToReport, withSim, withWorker, type Env } from './harness.ts';
import { bodyUuids, compactRecordings, writeTargetsFile } from './products.ts';
import { markdownTable } from './measure.ts';

/** One item in CHANGED_EVERY gets a new version in the changed-only run (1 %). */
const CHANGED_EVERY = 100;
/** Goals of issue 13. */
const STORE_MIN_RATIO = 0.95;
const CHANGED_MAX_SHARE = 0.2;
const DRY_RUN_MAX_MS = 30_000;

export interface StateRunResult {
  targets: number;
  latencyMs: number;
  /** Full sync, no store. */
  plainMs: number;
  /** Full sync, every answer recorded. */
  storeMs: number;
  /** plain ÷ store time: the store's throughput ratio. */
  storeRatio: number;
  /** The changed-only sync of the catalog with CHANGED_EVERY-th versions changed. */
  changedMs: number;
  changedSent: number;
  /** Provider calls of the changed-only sync. */
  changedCalls: number;
  changedCounts: Counts;
  /** changed-only time ÷ the full sync's with the store. */
  changedShare: number;
  dryRunMs: number;
  dryRunCalls: number;
  workerPeakRssMb: number | undefined;
  ok: boolean;
  problems: string[];
}

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined ? '—' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export async function stateScenario(env: Env, n: number, latencyMs: number): Promise<StateRunResult> {
  const v1 = writeTargetsFile(path.join(env.dir, `versioned-${n}.ndjson`), CATALOG, 0, n, () => 'v1');
  const v2 = writeTargetsFile(path.join(env.dir, `versioned-${n}-changed.ndjson`), CATALOG, 0, n, (i) =>
    i % CHANGED_EVERY === 0 ? 'v2' : 'v1',
  );
  const warm = writeTargetsFile(path.join(env.dir, 'state-warm-up.ndjson'), CATALOG, n, n + 10);
  const options: SyncOptions = { concurrency: K, resubmissionWindow: '0s' };
  const timeoutMs = 120_000 + n;
  const problems: string[] = [];
  const timed = async (taskQueue: string, file: string, opts: SyncOptions) => {
    const started = performance.now();
    const sync = await syncToReport(
      env,
      taskQueue,
      { provider: 'octogen', targetsRef: { file }, options: opts },
      timeoutMs,
    );
    if (sync.abortReason !== undefined) problems.push(`${sync.workflowId} aborted: ${sync.abortReason}`);
    return { ms: performance.now() - started, counts: sync.counts };
  };
  return withSim(
    env,
    () => octogenSim(env, n + 10, latencyMs),
    async (sim) => {
      let sent = 0;
      let calls = 0;
      const compactor = compactRecordings(sim.requests, (r) => {
        sent += bodyUuids(r.body).length;
        calls += 1;
      });
      try {
        const plainEnv = { OCTOGEN_BASE_URL: sim.url, CATALOG_SYNC_STATE_URL: 'off' };
        const plain = await withWorker(env, `state-plain-${n}`, plainEnv, async (tq) => {
          await timed(tq, warm, options);
          return timed(tq, v1, options);
        });
        if (plain.counts.accepted !== n) problems.push(`full sync without the store accepted ${plain.counts.accepted}`);
        const storeEnv = {
          OCTOGEN_BASE_URL: sim.url,
          CATALOG_SYNC_STATE_URL: `sqlite:${path.join(env.dir, `target-state-${n}-${latencyMs}.sqlite`)}`,
        };
        return await withWorker(env, `state-store-${n}`, storeEnv, async (tq, worker) => {
          await timed(tq, warm, options);
          const full = await timed(tq, v1, options);
          if (full.counts.accepted !== n) problems.push(`full sync with the store accepted ${full.counts.accepted}`);
          compactor.flush();
          const before = sent;
          const callsBefore = calls;
          const changed = await timed(tq, v2, { ...options, changedOnly: true });
          compactor.flush();
          const changedSent = sent - before;
          const changedCalls = calls - callsBefore;
          const expected = Math.ceil(n / CHANGED_EVERY);
          if (changedSent !== expected) problems.push(`changed-only sync sent ${changedSent}, not ${expected}`);
          if (changed.counts.submitted !== expected || changed.counts.unchanged !== n - expected) {
            problems.push(
              `changed-only counts: submitted ${changed.counts.submitted}, unchanged ${changed.counts.unchanged ?? 0}`,
            );
          }
          const dryStarted = performance.now();
          const plan = await dryRunSync({ provider: 'octogen', targetsRef: { file: v1 }, options });
          const dryRunMs = performance.now() - dryStarted;
          if (plan.targets !== n) problems.push(`dry run counted ${plan.targets} targets`);
          const storeRatio = plain.ms / full.ms;
          const changedShare = changed.ms / full.ms;
          if (storeRatio < STORE_MIN_RATIO) problems.push(`store ratio ${storeRatio.toFixed(2)} < ${STORE_MIN_RATIO}`);
          if (changedShare >= CHANGED_MAX_SHARE) {
            problems.push(`changed-only took ${(changedShare * 100).toFixed(0)} % of the full sync`);
          }
          if (dryRunMs >= DRY_RUN_MAX_MS) problems.push(`dry run took ${fmt(dryRunMs / 1000, 1)} s`);
          return {
            targets: n,
            latencyMs,
            plainMs: plain.ms,
            storeMs: full.ms,
            storeRatio,
            changedMs: changed.ms,
            changedSent,
            changedCalls,
            changedCounts: changed.counts,
            changedShare,
            dryRunMs,
            dryRunCalls: plan.calls,
            workerPeakRssMb: worker.peakRssMb(),
            ok: problems.length === 0,
            problems,
          };
        });
      } finally {
        compactor.stop();
      }
    },
  );
}

export function renderStateRows(rows: StateRunResult[]): string {
  return markdownTable(
    [
      'target state (Octogen by reference, K=4)',
      'full, no store s',
      'full, store s',
      `store ratio (goal ≥ ${STORE_MIN_RATIO})`,
      '1 % changed: sent',
      'in calls',
      '1 % changed s',
      `÷ full (goal < ${CHANGED_MAX_SHARE * 100} %)`,
      `dry run s (goal < ${DRY_RUN_MAX_MS / 1000})`,
      'worker peak RSS MB',
      'check',
    ],
    rows.map((r) => [
      `${fmt(r.targets)} @ ${r.latencyMs} ms`,
      fmt(r.plainMs / 1000, 2),
      fmt(r.storeMs / 1000, 2),
      fmt(r.storeRatio, 2),
      fmt(r.changedSent),
      fmt(r.changedCalls),
      fmt(r.changedMs / 1000, 2),
      `${fmt(r.changedShare * 100, 1)} %`,
      fmt(r.dryRunMs / 1000, 2),
      fmt(r.workerPeakRssMb),
      r.ok ? 'ok' : `FAIL: ${r.problems.join('; ')}`,
    ]),
    [false, true, true, true, true, true, true, true, true, true, false],
  );
}
