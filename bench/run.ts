/**
 * `npm run bench`: catalog-sync against the plain-Node baseline, side by side on a local Temporal
 * dev server (in memory) and the Octogen simulator, in one run.
 *
 *   BENCH_SIZES=10000,100000,1000000   targets per sync (default)
 *   BENCH_LATENCIES=0,200              simulator answer latency in ms (default)
 *   BENCH_BUDGET_BATCHES=200           batches per sync in the budget run (default 200; 20 when
 *                                      BENCH_SIZES or BENCH_LATENCIES is set: a quick run)
 *   BENCH_FAIRNESS=1                   the fairness run: on by default, off in a quick run unless 1;
 *                                      0 turns it off
 *   BENCH_FAIRNESS_TARGETS=1000000     targets of the fairness run's big sync (default)
 *   BENCH_STATE_SIZES=1000000          the target-state rows (bench/state.ts): a full sync without and
 *                                      with the store, a 1 %-changed changed-only sync, a dry run;
 *                                      at each of BENCH_LATENCIES (default 1000000 in a full run, none
 *                                      in a quick run unless set; 0 turns them off)
 *   BENCH_STATE_LATENCIES=200          the target-state rows' latencies (default: BENCH_LATENCIES)
 *
 * Sizes of 10,000,000 and more are accepted: target files are written in chunks, the simulator's
 * products are cheap (bench/products.ts) and its recorded bodies are compacted as they arrive.
 * Rows of 1,000,000 targets and more also check every run's history (< 10,000 events,
 * < 4 MB) and the worker's peak RSS (< 500 MB).
 *
 * Also: an Insider run (a hidden 23-record limit the project is not told, two syncs of 2,500
 * updates on one worker; goal: at most 8 oversize answers in all), and the fairness run (10-target
 * syncs submitted while a big sync saturates the provider; goal: their first call within 2 s).
 *
 * Progress goes to stderr, one line per scenario; stdout gets only the header and the tables.
 * Results: .artifacts/bench.json and .artifacts/bench.md.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startSync } from '../client/index.ts';
import { DEFAULT_OPTIONS, type Counts, type SyncOptions } from '../contracts/index.ts';
import { startDevServer } from '../scripts/dev-server.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import type { RecordedRequest } from '../simulators/faults.ts';
import { makeInsiderItems, startInsiderSimulator } from '../simulators/insider.ts';
import { startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { workflowBundleOptions } from '../worker/worker.ts';
import {
  BATCH,
  CATALOG,
  K,
  KEY,
  octogenSim,
  syncToReport,
  targetsFile,
  withSim,
  withWorker,
  type Env,
} from './harness.ts';
import { renderStateRows, stateScenario, type StateRunResult } from './state.ts';
import { runBaseline, type BaselineResult } from './baseline.ts';
import { benchProducts, bodyUuids, compactRecordings, writeTargetsFile } from './products.ts';
import {
  historyStats,
  killWorkers,
  markdownTable,
  percentile,
  type BenchWorker,
  type HistoryStats,
} from './measure.ts';

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

const SMALL_SYNCS = 10;
const SMALL_TARGETS = 10;
const BUDGET_RPM = 600;
const BUDGET_SYNCS = 3;
const BUDGET_BATCH_SIZE = 5;
const BUDGET_CONCURRENCY = 8;
/** Full runs require the budget run to use at least this share of the budget. */
const BUDGET_MIN_USED = 0.95;

/** Checks of rows of LARGE_ROW targets and more. */
const LARGE_ROW = 1_000_000;
const MAX_RUN_EVENTS = 10_000;
const MAX_RUN_BYTES = 4_000_000;
const MAX_WORKER_RSS_MB = 500;

const INSIDER_PARTNER = 'bench-partner';
const INSIDER_TOKEN = 'bench-insider-token';
/** The account's hidden record limit; the project keeps INSIDER_MAX_RECORDS at its default 1000. */
const INSIDER_HIDDEN_LIMIT = 23;
const INSIDER_SYNCS = 2;
const INSIDER_UPDATES = 2_500;
/** A budget high enough never to be what paces the run (the simulator has none). */
const INSIDER_RPM = 60_000;
const INSIDER_MAX_OVERSIZE = 8;

const SMALL_CATALOG = 'beta';
const FAIRNESS_LATENCY_MS = 50;
const FAIRNESS_SMALL_SYNCS = 5;
const FAIRNESS_SPACING_MS = 1_000;
const FAIRNESS_GOAL_MS = 2_000;

function intList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new Error(`${name} must be a comma-separated list of whole numbers, got ${JSON.stringify(raw)}`);
  }
  return list;
}

const quick = Boolean(process.env.BENCH_SIZES?.trim() || process.env.BENCH_LATENCIES?.trim());
const sizes = intList('BENCH_SIZES', [10_000, 100_000, 1_000_000]).filter((n) => n > 0);
const latencies = intList('BENCH_LATENCIES', [0, 200]);
const budgetBatches = intList('BENCH_BUDGET_BATCHES', [quick ? 20 : 200])[0] ?? 200;
const fairnessFlag = process.env.BENCH_FAIRNESS?.trim() ?? '';
const fairnessOn = quick ? fairnessFlag === '1' : fairnessFlag !== '0';
const fairnessTargets = intList('BENCH_FAIRNESS_TARGETS', [1_000_000])[0] ?? 1_000_000;
const stateSizes = intList('BENCH_STATE_SIZES', quick ? [] : [1_000_000]).filter((n) => n > 0);
const stateLatencies = intList('BENCH_STATE_LATENCIES', latencies);

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);
const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

interface SizeRow {
  targets: number;
  latencyMs: number;
  /** 1-minute load average when the scenario ended (other processes on the machine show here). */
  loadAvg1?: number;
  baseline?: BaselineResult & { targetsPerSecond: number };
  catalogSync?: {
    workflowId: string;
    wallMs: number;
    targetsPerSecond: number;
    /** catalog-sync throughput / baseline throughput. */
    ratio: number;
    firstCallMs: number | undefined;
    /** First provider call -> last answer (call arrival + simulator latency). */
    providerSpanMs: number | undefined;
    /** Mean provider calls in flight over that span (latency > 0 only); K is the most. */
    avgInFlight: number | undefined;
    /** Last provider answer -> the report in the caller's hands. */
    tailMs: number | undefined;
    providerCalls: number;
    workerPeakRssMb: number | undefined;
    counts: Counts;
    history: HistoryStats | undefined;
  };
  ok: boolean;
  problems: string[];
}

interface FirstCallResult {
  source: 'file' | 'inline';
  syncs: number;
  samplesMs: number[];
  medianMs: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  ok: boolean;
  problems: string[];
}

interface BudgetResult {
  syncs: number;
  batchesPerSync: number;
  batchSize: number;
  concurrency: number;
  budgetPerMinute: number;
  providerCalls: number;
  wallMs: number;
  achievedPerMinute: number;
  rateLimited: number;
  /** achieved ÷ budget, in %. */
  usedPercent: number;
  workerPeakRssMb: number | undefined;
  ok: boolean;
  problems: string[];
}

interface InsiderSyncResult {
  workflowId: string;
  updates: number;
  providerCalls: number;
  /** Answers 400 "Maximum allowed request size is exceeded." */
  oversize: number;
  /** Records of the largest call answered 200. */
  largestAnswered: number;
  wallMs: number;
  counts: Counts;
}

interface InsiderResult {
  hiddenLimit: number;
  syncs: InsiderSyncResult[];
  providerCalls: number;
  oversize: number;
  wallMs: number;
  /** Distinct records answered 200 over both syncs. */
  delivered: number;
  workerPeakRssMb: number | undefined;
  ok: boolean;
  problems: string[];
}

interface FairnessResult {
  bigTargets: number;
  latencyMs: number;
  smallSyncs: number;
  smallTargets: number;
  /** Submit -> that small sync's first provider call, per small sync (undefined: none seen). */
  samplesMs: (number | undefined)[];
  medianMs: number;
  maxMs: number;
  /** The big sync's provider calls before the last small sync's report. */
  bigCallsMeanwhile: number;
  /** What became of the big sync: terminated once measured, or finished before. */
  bigOutcome: string;
  workerPeakRssMb: number | undefined;
  ok: boolean;
  problems: string[];
}

/** The report's promise, plus every target accepted (the bench's targets are all valid). */
function checkCounts(c: Counts, n: number): string[] {
  const problems: string[] = [];
  if (c.submitted !== c.accepted + c.rejected + c.failed + c.superseded) {
    problems.push(
      `counts do not add up: submitted ${c.submitted} != accepted ${c.accepted} + rejected ${c.rejected} + failed ${c.failed} + superseded ${c.superseded}`,
    );
  }
  if (c.accepted !== n) problems.push(`accepted ${c.accepted} != ${n}`);
  if (c.submitted !== n) problems.push(`submitted ${c.submitted} != ${n}`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

async function sizeScenario(env: Env, n: number, latencyMs: number): Promise<SizeRow> {
  const row: SizeRow = { targets: n, latencyMs, ok: false, problems: [] };
  const file = targetsFile(env, n);
  await withSim(
    env,
    () => octogenSim(env, n, latencyMs),
    (sim) => sizeRun(env, row, file, sim),
  );
  if (n >= LARGE_ROW) row.problems.push(...largeRowProblems(row));
  row.ok = row.problems.length === 0;
  return row;
}

/** The checks of a row of LARGE_ROW targets or more: every run's history, the worker's memory. */
function largeRowProblems(row: SizeRow): string[] {
  const cs = row.catalogSync;
  if (!cs) return [];
  const problems: string[] = [];
  const h = cs.history;
  if (h && h.maxEvents >= MAX_RUN_EVENTS)
    problems.push(`a run has ${fmt(h.maxEvents)} events (≥ ${fmt(MAX_RUN_EVENTS)})`);
  if (h && h.maxBytes >= MAX_RUN_BYTES) {
    problems.push(`${h.maxBytesRun}'s history is ${fmt(h.maxBytes)} bytes (≥ ${fmt(MAX_RUN_BYTES)})`);
  }
  if (cs.workerPeakRssMb === undefined) problems.push('worker peak RSS unknown');
  else if (cs.workerPeakRssMb >= MAX_WORKER_RSS_MB) {
    problems.push(`worker peak RSS ${fmt(cs.workerPeakRssMb)} MB (≥ ${MAX_WORKER_RSS_MB})`);
  }
  return problems;
}

async function sizeRun(env: Env, row: SizeRow, file: string, sim: OctogenSimulator): Promise<void> {
  const n = row.targets;
  const latencyMs = row.latencyMs;
  // Only `at` and the count of the recordings are read: bodies are dropped as they arrive.
  const compactor = compactRecordings(sim.requests);
  const reset = () => {
    sim.reset();
    compactor.restart();
  };
  try {
    // The store off, as the baseline records nothing: what the store costs is the target-state
    // table's own side-by-side measure (bench/state.ts).
    const workerEnv = { OCTOGEN_BASE_URL: sim.url, CATALOG_SYNC_STATE_URL: 'off' };
    await withWorker(env, `${n}-${latencyMs}ms`, workerEnv, (taskQueue, worker) =>
      sizeRunOnWorker(env, row, file, sim, reset, taskQueue, worker),
    );
  } finally {
    compactor.stop();
  }
}

async function sizeRunOnWorker(
  env: Env,
  row: SizeRow,
  file: string,
  sim: OctogenSimulator,
  reset: () => void,
  taskQueue: string,
  worker: BenchWorker,
): Promise<void> {
  const n = row.targets;
  const latencyMs = row.latencyMs;
  reset();
  const base = await runBaseline({ file, baseUrl: sim.url, apiKey: KEY, concurrency: K, batchSize: BATCH });
  row.baseline = { ...base, targetsPerSecond: n / (base.wallMs / 1000) };
  if (base.accepted !== n) row.problems.push(`baseline accepted ${base.accepted} != ${n}`);

  // A warm worker, as in production: the account's governor workflow exists, caches and connections are up.
  const warmFile = path.join(env.dir, 'warm-up.ndjson');
  writeTargetsFile(warmFile, CATALOG, 0, 10);
  await syncToReport(env, taskQueue, { provider: 'octogen', targetsRef: { file: warmFile } }, 60_000);

  reset();
  const options: SyncOptions = { concurrency: K, resubmissionWindow: '0s' };
  const t0 = Date.now();
  const started = performance.now();
  const sync = await syncToReport(env, taskQueue, { provider: 'octogen', targetsRef: { file }, options }, 120_000 + n);
  const wallMs = performance.now() - started;
  const first = sim.requests[0]?.at;
  const last = sim.requests[sim.requests.length - 1]?.at;
  const span = first !== undefined && last !== undefined ? last + latencyMs - first : undefined;
  const rss = worker.peakRssMb();
  if (sync.abortReason !== undefined) row.problems.push(`aborted: ${sync.abortReason}`);
  row.problems.push(...checkCounts(sync.counts, n));
  if (sync.firstFailure !== undefined) row.problems.push(`first failure: ${sync.firstFailure}`);
  const targetsPerSecond = n / (wallMs / 1000);
  row.catalogSync = {
    workflowId: sync.workflowId,
    wallMs,
    targetsPerSecond,
    ratio: targetsPerSecond / row.baseline.targetsPerSecond,
    firstCallMs: first === undefined ? undefined : first - t0,
    providerSpanMs: span,
    avgInFlight: span && latencyMs > 0 ? (sim.requests.length * latencyMs) / span : undefined,
    tailMs: last === undefined ? undefined : t0 + wallMs - (last + latencyMs),
    providerCalls: sim.requests.length,
    workerPeakRssMb: rss,
    counts: sync.counts,
    history: undefined,
  };
  const slices = n > DEFAULT_OPTIONS.sliceSize ? Math.ceil(n / DEFAULT_OPTIONS.sliceSize) : 0;
  try {
    row.catalogSync.history = await historyStats(env.client, sync.workflowId, slices);
  } catch (err) {
    row.problems.push(`histories: ${errorText(err)}`);
  }
}

async function firstCallScenario(env: Env): Promise<FirstCallResult[]> {
  const files = Array.from({ length: SMALL_SYNCS + 1 }, (_, i) =>
    writeTargetsFile(path.join(env.dir, `small-${i}.ndjson`), CATALOG, i * SMALL_TARGETS, (i + 1) * SMALL_TARGETS),
  );
  const inline = Array.from({ length: SMALL_SYNCS + 1 }, (_, i) =>
    benchProducts(CATALOG, i * SMALL_TARGETS, (i + 1) * SMALL_TARGETS).map((p) => ({ uuid: p.uuid })),
  );
  const n = (SMALL_SYNCS + 1) * SMALL_TARGETS;
  return withSim(
    env,
    () => octogenSim(env, n, 0),
    (sim) => firstCallRun(env, sim, files, inline),
  );
}

async function firstCallRun(
  env: Env,
  sim: OctogenSimulator,
  files: string[],
  inline: { uuid: string }[][],
): Promise<FirstCallResult[]> {
  return withWorker(env, 'first-call', { OCTOGEN_BASE_URL: sim.url }, async (taskQueue) => {
    const options: SyncOptions = { concurrency: K, resubmissionWindow: '0s' };
    const one = async (request: Parameters<typeof startSync>[1], problems: string[]): Promise<number | undefined> => {
      sim.reset();
      const t0 = Date.now();
      const sync = await syncToReport(env, taskQueue, request, 60_000);
      problems.push(...checkCounts(sync.counts, SMALL_TARGETS));
      const first = sim.requests[0]?.at;
      return first === undefined ? undefined : first - t0;
    };
    // Warm-up (not measured): the worker's first workflow and activity tasks, caches, connections.
    const warm: string[] = [];
    await one({ provider: 'octogen', targetsRef: { file: files[SMALL_SYNCS] ?? '' }, options }, warm);
    await one({ provider: 'octogen', targets: inline[SMALL_SYNCS] ?? [], options }, warm);

    const results: FirstCallResult[] = [];
    for (const source of ['file', 'inline'] as const) {
      const problems: string[] = [];
      const samples: number[] = [];
      for (let i = 0; i < SMALL_SYNCS; i += 1) {
        const request =
          source === 'file'
            ? { provider: 'octogen', targetsRef: { file: files[i] ?? '' }, options }
            : { provider: 'octogen', targets: inline[i] ?? [], options };
        const ms = await one(request, problems);
        if (ms === undefined) problems.push(`sync ${i} made no provider call`);
        else samples.push(ms);
      }
      results.push({
        source,
        syncs: SMALL_SYNCS,
        samplesMs: samples,
        medianMs: percentile(samples, 50),
        p90Ms: percentile(samples, 90),
        minMs: Math.min(...samples),
        maxMs: Math.max(...samples),
        ok: problems.length === 0 && warm.length === 0,
        problems: [...warm.map((p) => `warm-up: ${p}`), ...problems],
      });
    }
    return results;
  });
}

async function budgetScenario(env: Env): Promise<BudgetResult> {
  const perSync = budgetBatches * BUDGET_BATCH_SIZE;
  const sim = await octogenSim(env, BUDGET_SYNCS * perSync, 0, { requestsPerMinute: BUDGET_RPM });
  env.sims.add(sim);
  try {
    const files = Array.from({ length: BUDGET_SYNCS }, (_, i) =>
      writeTargetsFile(path.join(env.dir, `budget-${i}.ndjson`), CATALOG, i * perSync, (i + 1) * perSync),
    );
    const workerEnv = { OCTOGEN_BASE_URL: sim.url, OCTOGEN_REQUESTS_PER_MINUTE: String(BUDGET_RPM) };
    return await withWorker(env, 'budget', workerEnv, async (taskQueue, worker) => {
      sim.reset();
      const options: SyncOptions = {
        batchSize: BUDGET_BATCH_SIZE,
        concurrency: BUDGET_CONCURRENCY,
        resubmissionWindow: '0s',
      };
      const started = performance.now();
      const timeoutMs = 120_000 + ((BUDGET_SYNCS * budgetBatches) / BUDGET_RPM) * 60_000 * 2;
      const syncs = await Promise.all(
        files.map((file) =>
          syncToReport(env, taskQueue, { provider: 'octogen', targetsRef: { file }, options }, timeoutMs),
        ),
      );
      const wallMs = performance.now() - started;
      const problems = syncs.flatMap((s, i) => [
        ...checkCounts(s.counts, perSync).map((p) => `sync ${i}: ${p}`),
        ...(s.abortReason !== undefined ? [`sync ${i} aborted: ${s.abortReason}`] : []),
      ]);
      const calls = sim.requests.length;
      const span = (sim.requests[calls - 1]?.at ?? 0) - (sim.requests[0]?.at ?? 0);
      const achievedPerMinute = span > 0 ? (calls / span) * 60_000 : Number.NaN;
      const usedPercent = (achievedPerMinute / BUDGET_RPM) * 100;
      if (!quick) {
        // A quick run is too short for the rate to mean much: it only reports.
        if (!(usedPercent >= BUDGET_MIN_USED * 100)) {
          problems.push(`used ${fmt(usedPercent, 1)} % of the budget (< ${BUDGET_MIN_USED * 100} %)`);
        }
        if (sim.rateLimited > 0) problems.push(`${sim.rateLimited} × 429`);
      }
      return {
        syncs: BUDGET_SYNCS,
        batchesPerSync: budgetBatches,
        batchSize: BUDGET_BATCH_SIZE,
        concurrency: BUDGET_CONCURRENCY,
        budgetPerMinute: BUDGET_RPM,
        providerCalls: calls,
        wallMs,
        achievedPerMinute,
        rateLimited: sim.rateLimited,
        usedPercent,
        workerPeakRssMb: worker.peakRssMb(),
        ok: problems.length === 0,
        problems,
      };
    });
  } finally {
    env.sims.delete(sim);
    await sim.close();
  }
}

const insiderUpdate = (key: string) => {
  const [item_id, locale] = key.split(':');
  return { item_id, locale, in_stock: 1 };
};

/**
 * Insider with a hidden record limit of 23 (the project keeps INSIDER_MAX_RECORDS at 1000): two
 * syncs of 2,500 updates, one after the other, on one worker. The provider-account governor should
 * learn the limit in the first and plan the second at it.
 */
async function insiderScenario(env: Env): Promise<InsiderResult> {
  const items = makeInsiderItems(INSIDER_SYNCS * INSIDER_UPDATES);
  const start = () =>
    startInsiderSimulator({
      partnerName: INSIDER_PARTNER,
      token: INSIDER_TOKEN,
      items,
      requestsPerMinute: Number.POSITIVE_INFINITY,
      maxRecords: INSIDER_HIDDEN_LIMIT,
    });
  return withSim(env, start, async (sim) => {
    const workerEnv = {
      INSIDER_BASE_URL: sim.url,
      INSIDER_PARTNER_NAME: INSIDER_PARTNER,
      INSIDER_REQUEST_TOKEN: INSIDER_TOKEN,
      INSIDER_REQUESTS_PER_MINUTE: String(INSIDER_RPM),
    };
    return withWorker(
      env,
      'insider',
      workerEnv,
      async (taskQueue, worker) => {
        const problems: string[] = [];
        const syncs: InsiderSyncResult[] = [];
        const options: SyncOptions = { concurrency: K, resubmissionWindow: '0s' };
        const started = performance.now();
        for (let i = 0; i < INSIDER_SYNCS; i += 1) {
          const from = sim.requests.length;
          const t0 = performance.now();
          const targets = items.slice(i * INSIDER_UPDATES, (i + 1) * INSIDER_UPDATES).map(insiderUpdate);
          const sync = await syncToReport(env, taskQueue, { provider: 'insider', targets, options }, 300_000);
          const calls = sim.requests.slice(from);
          const answered = calls.filter((r) => r.status === 200);
          syncs.push({
            workflowId: sync.workflowId,
            updates: targets.length,
            providerCalls: calls.length,
            oversize: calls.filter((r) => r.status === 400).length,
            largestAnswered: Math.max(0, ...answered.map((r) => (Array.isArray(r.body) ? r.body.length : 0))),
            wallMs: performance.now() - t0,
            counts: sync.counts,
          });
          problems.push(...checkCounts(sync.counts, targets.length).map((p) => `sync ${i + 1}: ${p}`));
          if (sync.abortReason !== undefined) problems.push(`sync ${i + 1} aborted: ${sync.abortReason}`);
          if (sync.firstFailure !== undefined) problems.push(`sync ${i + 1}'s first failure: ${sync.firstFailure}`);
        }
        const wallMs = performance.now() - started;
        const others = sim.requests.filter((r) => r.status !== 200 && r.status !== 400);
        if (others.length > 0)
          problems.push(`answers other than 200 or 400: ${others.map((r) => r.status).join(', ')}`);
        const delivered = new Set(
          sim.requests
            .filter((r) => r.status === 200 && Array.isArray(r.body))
            .flatMap((r) => (r.body as { item_id?: string; locale?: string }[]).map((u) => `${u.item_id}:${u.locale}`)),
        );
        if (delivered.size !== items.length) problems.push(`${delivered.size} of ${items.length} records answered 200`);
        const oversize = syncs.reduce((a, x) => a + x.oversize, 0);
        if (oversize > INSIDER_MAX_OVERSIZE) problems.push(`${oversize} oversize answers (> ${INSIDER_MAX_OVERSIZE})`);
        return {
          hiddenLimit: INSIDER_HIDDEN_LIMIT,
          syncs,
          providerCalls: sim.requests.length,
          oversize,
          wallMs,
          delivered: delivered.size,
          workerPeakRssMb: worker.peakRssMb(),
          ok: problems.length === 0,
          problems,
        };
      },
      'insider',
    );
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A big Octogen sync by reference saturates the provider (latency 50 ms, K=4); once it made its
 * first call, 10-target syncs are submitted a second apart, and each one's submit -> first call is
 * taken from the simulator's recordings (its calls name its own products, of another catalog). The
 * big sync is then terminated: its end is not what is measured.
 */
async function fairnessScenario(env: Env): Promise<FairnessResult> {
  const bigN = fairnessTargets;
  const bigFile = targetsFile(env, bigN);
  const smallFiles = Array.from({ length: FAIRNESS_SMALL_SYNCS }, (_, i) =>
    writeTargetsFile(
      path.join(env.dir, `fair-small-${i}.ndjson`),
      SMALL_CATALOG,
      i * SMALL_TARGETS,
      (i + 1) * SMALL_TARGETS,
    ),
  );
  const small = benchProducts(SMALL_CATALOG, 0, FAIRNESS_SMALL_SYNCS * SMALL_TARGETS);
  const syncOf = new Map(small.map((p, i) => [p.uuid, Math.floor(i / SMALL_TARGETS)]));
  const start = () =>
    startOctogenSimulator({
      keys: { [KEY]: [CATALOG, SMALL_CATALOG] },
      products: benchProducts(CATALOG, 0, bigN).concat(small),
      latencyMs: FAIRNESS_LATENCY_MS,
    });
  return withSim(env, start, async (sim) => {
    const firstCallAt: (number | undefined)[] = new Array<number | undefined>(FAIRNESS_SMALL_SYNCS).fill(undefined);
    let bigFirstAt: number | undefined;
    let bigCalls = 0;
    let counting = true;
    const onRecord = (r: RecordedRequest) => {
      const uuid = bodyUuids(r.body)[0];
      const i = uuid === undefined ? undefined : syncOf.get(uuid);
      if (i === undefined) {
        bigFirstAt ??= r.at;
        if (counting) bigCalls += 1;
      } else firstCallAt[i] ??= r.at;
    };
    const compactor = compactRecordings(sim.requests, onRecord, 50);
    try {
      return await withWorker(env, 'fairness', { OCTOGEN_BASE_URL: sim.url }, async (taskQueue, worker) => {
        const problems: string[] = [];
        const options: SyncOptions = { concurrency: K, resubmissionWindow: '0s' };
        const big = await startSync(
          env.client,
          { provider: 'octogen', targetsRef: { file: bigFile }, options },
          taskQueue,
        );
        const handle = env.client.workflow.getHandle(big.workflowId);
        let bigOutcome = 'terminated once measured';
        try {
          const deadline = Date.now() + 120_000;
          while (bigFirstAt === undefined) {
            if (Date.now() > deadline) throw new Error('the big sync made no provider call within 120 s');
            await sleep(50);
            compactor.flush();
          }
          const submittedAt: number[] = [];
          const reports: Promise<{ counts: Counts; abortReason?: string }>[] = [];
          for (let i = 0; i < FAIRNESS_SMALL_SYNCS; i += 1) {
            if (i > 0) await sleep(FAIRNESS_SPACING_MS);
            submittedAt.push(Date.now());
            const request = { provider: 'octogen', targetsRef: { file: smallFiles[i] ?? '' }, options };
            const report = syncToReport(env, taskQueue, request, 120_000);
            report.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
            reports.push(report);
          }
          const settled = await Promise.allSettled(reports);
          compactor.flush();
          counting = false;
          settled.forEach((s, i) => {
            if (s.status === 'rejected') problems.push(`small sync ${i + 1}: ${errorText(s.reason)}`);
            else {
              problems.push(...checkCounts(s.value.counts, SMALL_TARGETS).map((p) => `small sync ${i + 1}: ${p}`));
              if (s.value.abortReason !== undefined)
                problems.push(`small sync ${i + 1} aborted: ${s.value.abortReason}`);
            }
          });
          const status = (await handle.describe()).status.name;
          if (status !== 'RUNNING') {
            bigOutcome = `${status.toLowerCase()} before the small syncs were done`;
            problems.push(
              `the big sync was ${status} before the small syncs were done: it did not saturate the provider throughout`,
            );
          }
          const samples = firstCallAt.map((at, i) => (at === undefined ? undefined : at - (submittedAt[i] ?? at)));
          samples.forEach((ms, i) => {
            if (ms === undefined) problems.push(`small sync ${i + 1} made no provider call`);
          });
          const seen = samples.filter((x): x is number => x !== undefined);
          const medianMs = percentile(seen, 50);
          const maxMs = seen.length > 0 ? Math.max(...seen) : Number.NaN;
          if (!quick && !(maxMs < FAIRNESS_GOAL_MS)) {
            problems.push(`max submit→first call ${fmt(maxMs)} ms (goal < ${fmt(FAIRNESS_GOAL_MS)})`);
          }
          return {
            bigTargets: bigN,
            latencyMs: FAIRNESS_LATENCY_MS,
            smallSyncs: FAIRNESS_SMALL_SYNCS,
            smallTargets: SMALL_TARGETS,
            samplesMs: samples,
            medianMs,
            maxMs,
            bigCallsMeanwhile: bigCalls,
            bigOutcome,
            workerPeakRssMb: worker.peakRssMb(),
            ok: problems.length === 0,
            problems,
          };
        } finally {
          await handle.terminate('bench: the fairness run is measured').catch(() => undefined);
        }
      });
    } finally {
      compactor.stop();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

const fmt = (x: number | undefined, digits = 0): string =>
  x === undefined || !Number.isFinite(x)
    ? '-'
    : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function render(
  header: string,
  loads: number[],
  rows: SizeRow[],
  firstCall: FirstCallResult[] | undefined,
  budget: BudgetResult | undefined,
  insider: InsiderResult | undefined,
  fairness: FairnessResult | undefined,
): string {
  const main = markdownTable(
    [
      'targets',
      'latency',
      'baseline s',
      'baseline t/s',
      'catalog-sync s',
      'catalog-sync t/s',
      'ratio',
      'runs',
      'max history events',
      'max history bytes',
      'largest event bytes',
      'worker peak RSS MB',
      'submit→first call ms',
      'check',
    ],
    rows.map((r) => {
      const cs = r.catalogSync;
      const h = cs?.history;
      return [
        fmt(r.targets),
        `${r.latencyMs} ms`,
        fmt(r.baseline && r.baseline.wallMs / 1000, 2),
        fmt(r.baseline?.targetsPerSecond),
        fmt(cs && cs.wallMs / 1000, 2),
        fmt(cs?.targetsPerSecond),
        fmt(cs?.ratio, 2),
        h ? `${h.parentRuns} + ${h.runs - h.parentRuns}` : '-',
        fmt(h?.maxEvents),
        fmt(h?.maxBytes),
        h ? `${fmt(h.largestEventBytes)} (${h.largestEventType.replace(/^EVENT_TYPE_/, '')})` : '-',
        fmt(cs?.workerPeakRssMb),
        fmt(cs?.firstCallMs),
        r.ok ? 'ok' : `FAIL: ${r.problems.join('; ')}`,
      ];
    }),
    [true, true, true, true, true, true, true, true, true, true, true, true, true, false],
  );
  const where = markdownTable(
    [
      'where the time goes',
      'first call ms',
      'calls span s',
      'calls in flight',
      'last answer→report ms',
      'scan ms',
      'start child ms',
      'child plan ms',
      'sendBatch queue ms',
      'sendBatch run ms',
      'child close ms',
      'child lifetime ms',
      'parent react ms',
    ],
    rows.map((r) => {
      const cs = r.catalogSync;
      const t = cs?.history?.timeline;
      return [
        `${fmt(r.targets)} @ ${r.latencyMs} ms`,
        fmt(cs?.firstCallMs),
        fmt(cs?.providerSpanMs && cs.providerSpanMs / 1000, 2),
        cs?.avgInFlight === undefined ? '-' : `${fmt(cs.avgInFlight, 2)} of ${K}`,
        fmt(cs?.tailMs),
        fmt(t?.scanMs),
        fmt(t?.startChildMs),
        fmt(t?.childPlanMs),
        fmt(t?.sendQueueMs),
        fmt(t?.sendRunMs),
        fmt(t?.childCloseMs),
        fmt(t?.childLifetimeMs),
        fmt(t?.parentReactMs),
      ];
    }),
    [false, true, true, true, true, true, true, true, true, true, true, true, true],
  );
  const parts = [header, '', main, '', where];
  if (firstCall) {
    parts.push(
      '',
      markdownTable(
        [
          `submit→first call, ${SMALL_TARGETS}-target syncs on a warm worker`,
          'syncs',
          'median ms',
          'p90 ms',
          'min ms',
          'max ms',
          'check',
        ],
        firstCall.map((f) => [
          f.source === 'file' ? 'targetsRef (NDJSON file)' : 'inline targets',
          String(f.syncs),
          fmt(f.medianMs),
          fmt(f.p90Ms),
          fmt(f.minMs),
          fmt(f.maxMs),
          f.ok ? 'ok' : `FAIL: ${f.problems.join('; ')}`,
        ]),
        [false, true, true, true, true, true, false],
      ),
    );
  }
  if (budget) {
    parts.push(
      '',
      markdownTable(
        [
          'budget run',
          'provider calls',
          'wall s',
          'achieved req/min',
          'budget req/min',
          'budget used %',
          '429s',
          'worker peak RSS MB',
          'check',
        ],
        [
          [
            `${budget.syncs} syncs at once × ${budget.batchesPerSync} batches of ${budget.batchSize} (concurrency ${budget.concurrency})`,
            fmt(budget.providerCalls),
            fmt(budget.wallMs / 1000, 1),
            fmt(budget.achievedPerMinute, 1),
            fmt(budget.budgetPerMinute),
            fmt(budget.usedPercent, 1),
            fmt(budget.rateLimited),
            fmt(budget.workerPeakRssMb),
            budget.ok
              ? quick
                ? 'ok (quick run: budget use and 429s only reported)'
                : 'ok'
              : `FAIL: ${budget.problems.join('; ')}`,
          ],
        ],
        [false, true, true, true, true, true, true, true, false],
      ),
    );
  }
  if (insider) {
    const check = insider.ok ? 'ok' : `FAIL: ${insider.problems.join('; ')}`;
    parts.push(
      '',
      markdownTable(
        [
          `Insider learned limit (hidden ${insider.hiddenLimit} records, INSIDER_MAX_RECORDS 1000)`,
          'updates',
          'provider calls',
          'oversize answers',
          'largest answered call',
          'wall s',
          'accepted',
          'worker peak RSS MB',
          'check',
        ],
        [
          ...insider.syncs.map((x, i) => [
            `sync ${i + 1}`,
            fmt(x.updates),
            fmt(x.providerCalls),
            fmt(x.oversize),
            fmt(x.largestAnswered),
            fmt(x.wallMs / 1000, 2),
            fmt(x.counts.accepted),
            '',
            '',
          ]),
          [
            `in all (goal ≤ ${INSIDER_MAX_OVERSIZE} oversize)`,
            fmt(insider.syncs.reduce((a, x) => a + x.updates, 0)),
            fmt(insider.providerCalls),
            fmt(insider.oversize),
            fmt(Math.max(0, ...insider.syncs.map((x) => x.largestAnswered))),
            fmt(insider.wallMs / 1000, 2),
            fmt(insider.syncs.reduce((a, x) => a + x.counts.accepted, 0)),
            fmt(insider.workerPeakRssMb),
            check,
          ],
        ],
        [false, true, true, true, true, true, true, true, false],
      ),
    );
  }
  if (fairness) {
    const met = fairness.maxMs < FAIRNESS_GOAL_MS;
    const check = !fairness.ok
      ? `FAIL: ${fairness.problems.join('; ')}`
      : quick && !met
        ? `ok (quick run: goal < ${fmt(FAIRNESS_GOAL_MS)} ms not met, only reported)`
        : 'ok';
    parts.push(
      '',
      markdownTable(
        [
          'fairness: submit→first call of small syncs during a big one',
          'small syncs',
          'median ms',
          'max ms',
          'samples ms',
          'big-sync calls meanwhile',
          'big sync',
          'worker peak RSS MB',
          'check',
        ],
        [
          [
            `${fairness.smallSyncs} × ${fairness.smallTargets} targets, ${FAIRNESS_SPACING_MS / 1000} s apart, ` +
              `during ${fmt(fairness.bigTargets)} targets @ ${fairness.latencyMs} ms (goal max < ${fmt(FAIRNESS_GOAL_MS)} ms)`,
            String(fairness.smallSyncs),
            fmt(fairness.medianMs),
            fmt(fairness.maxMs),
            fairness.samplesMs.map((x) => fmt(x)).join(', '),
            fmt(fairness.bigCallsMeanwhile),
            fairness.bigOutcome,
            fmt(fairness.workerPeakRssMb),
            check,
          ],
        ],
        [false, true, true, true, false, true, false, true, false],
      ),
    );
  }
  parts.push(
    '',
    `K=${K} batches in flight everywhere; batches of ${BATCH}; targets by reference (NDJSON file); resubmissionWindow 0s. ` +
      'The size rows run with the target-state store off (CATALOG_SYNC_STATE_URL=off), as the baseline records nothing; ' +
      'the target-state table measures the store side by side. ' +
      'ratio = catalog-sync t/s ÷ baseline t/s on the same simulator. runs = parent runs + slice children. ' +
      `Rows of ${fmt(LARGE_ROW)} targets and more check every run (< ${fmt(MAX_RUN_EVENTS)} events, < ${fmt(MAX_RUN_BYTES)} history bytes) ` +
      `and the worker (< ${MAX_WORKER_RSS_MB} MB peak RSS). ` +
      'Largest event = the largest encoded history event (its payloads included) of any run. ' +
      "Where the time goes: from the simulator (calls in flight = calls × latency ÷ span) and the histories' " +
      'event times (means per slice child or per sendBatch activity). ' +
      `Budget used = achieved ÷ budget; a full run requires ≥ ${BUDGET_MIN_USED * 100} % and no 429. ` +
      'Insider: two syncs one after the other on one worker; oversize = 400 "Maximum allowed request size is exceeded". ' +
      'Fairness: first call = the first simulator request naming one of that small sync’s products; ' +
      'the big sync is terminated once the small syncs reported. ' +
      `1-minute load average at the end of each scenario: ${loads.map((l) => l.toFixed(1)).join(', ')} (${os.cpus().length} cores).`,
  );
  return parts.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const date = new Date();
  const loadAvg1AtStart = os.loadavg()[0] ?? 0;
  const cpus = os.cpus();
  const machine = {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    totalMemGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
  const header =
    `catalog-sync bench — ${machine.cores} cores (${machine.cpuModel}), ${machine.totalMemGiB.toFixed(1)} GiB, ` +
    `Node ${machine.node}, ${machine.platform}, ${date.toISOString()}`;

  const setupStarted = performance.now();
  const artifacts = path.join(projectRoot(), '.artifacts');
  mkdirSync(artifacts, { recursive: true });
  const bundlePath = path.join(artifacts, 'workflow-bundle.js');
  const [server, bundle] = await Promise.all([
    startDevServer({ headless: true, log: 'quiet' }),
    bundleWorkflowCode({ ...workflowBundleOptions(), logger: quietLogger }),
  ]);
  // Written aside and renamed: a test run reading the same path never sees half a file.
  const tmpBundle = `${bundlePath}.${process.pid}.tmp`;
  writeFileSync(tmpBundle, bundle.code);
  renameSync(tmpBundle, bundlePath);

  const connection = await Connection.connect({ address: server.address });
  const env: Env = {
    server,
    client: new Client({ connection, namespace: server.namespace }),
    bundlePath,
    dir: mkdtempSync(path.join(os.tmpdir(), 'catalog-sync-bench-')),
    files: new Map(),
    sims: new Set(),
  };
  const stopAll = async () => {
    killWorkers();
    await Promise.all([...env.sims].map((s) => s.close().catch(() => undefined)));
    await connection.close().catch(() => undefined);
    await server.stop();
    rmSync(env.dir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping`);
      void stopAll().finally(() => process.exit(130));
    });
  }
  progress(
    `setup: dev server ${server.address}, workflow bundle in ${fmt((performance.now() - setupStarted) / 1000, 1)} s`,
  );

  const rows: SizeRow[] = [];
  /** Load averages after the first-call and budget scenarios (rows carry their own). */
  const loads: number[] = [];
  let firstCall: FirstCallResult[] | undefined;
  let budget: BudgetResult | undefined;
  let insider: InsiderResult | undefined;
  let fairness: FairnessResult | undefined;
  const stateRows: StateRunResult[] = [];
  const failures: string[] = [];
  try {
    for (const n of sizes) {
      for (const latencyMs of latencies) {
        let row: SizeRow;
        try {
          row = await sizeScenario(env, n, latencyMs);
        } catch (err) {
          row = { targets: n, latencyMs, ok: false, problems: [errorText(err)] };
        }
        row.loadAvg1 = os.loadavg()[0] ?? 0;
        rows.push(row);
        const cs = row.catalogSync;
        progress(
          `${fmt(n)} targets @ ${latencyMs} ms: baseline ${fmt(row.baseline && row.baseline.wallMs / 1000, 2)} s, ` +
            `catalog-sync ${fmt(cs && cs.wallMs / 1000, 2)} s (ratio ${fmt(cs?.ratio, 2)}, first call ${fmt(cs?.firstCallMs)} ms, ` +
            `worker ${fmt(cs?.workerPeakRssMb)} MB)${row.ok ? '' : ` FAIL: ${row.problems.join('; ')}`}`,
        );
      }
    }

    for (const n of stateSizes) {
      for (const latencyMs of stateLatencies) {
        try {
          const r = await stateScenario(env, n, latencyMs);
          stateRows.push(r);
          progress(
            `target state ${fmt(n)} @ ${latencyMs} ms: store ratio ${fmt(r.storeRatio, 2)}, 1 % changed sent ${fmt(r.changedSent)} in ` +
              `${fmt(r.changedMs / 1000, 2)} s (${fmt(r.changedShare * 100, 1)} % of full), dry run ${fmt(r.dryRunMs / 1000, 2)} s` +
              `${r.ok ? '' : ` FAIL: ${r.problems.join('; ')}`}`,
          );
        } catch (err) {
          failures.push(`target-state scenario ${fmt(n)} @ ${latencyMs} ms: ${errorText(err)}`);
          progress(`target state ${fmt(n)} @ ${latencyMs} ms: FAIL: ${errorText(err)}`);
        }
      }
    }

    try {
      firstCall = await firstCallScenario(env);
      loads.push(os.loadavg()[0] ?? 0);
      progress(
        `submit→first call: ${firstCall.map((f) => `${f.source} median ${fmt(f.medianMs)} ms, p90 ${fmt(f.p90Ms)} ms`).join('; ')}` +
          firstCall.flatMap((f) => (f.ok ? [] : [` FAIL (${f.source}): ${f.problems.join('; ')}`])).join(''),
      );
    } catch (err) {
      failures.push(`first-call scenario: ${errorText(err)}`);
      progress(`submit→first call: FAIL: ${errorText(err)}`);
    }

    try {
      budget = await budgetScenario(env);
      progress(
        `budget: ${budget.providerCalls} calls in ${fmt(budget.wallMs / 1000, 1)} s, ${fmt(budget.achievedPerMinute, 1)} req/min ` +
          `(budget ${BUDGET_RPM}), ${budget.rateLimited} × 429${budget.ok ? '' : ` FAIL: ${budget.problems.join('; ')}`}`,
      );
    } catch (err) {
      failures.push(`budget scenario: ${errorText(err)}`);
      progress(`budget: FAIL: ${errorText(err)}`);
    }
    loads.push(os.loadavg()[0] ?? 0);

    try {
      insider = await insiderScenario(env);
      progress(
        `insider: ${insider.providerCalls} calls, ${insider.oversize} oversize (${insider.syncs.map((x) => x.oversize).join(' + ')}) ` +
          `in ${fmt(insider.wallMs / 1000, 1)} s${insider.ok ? '' : ` FAIL: ${insider.problems.join('; ')}`}`,
      );
    } catch (err) {
      failures.push(`insider scenario: ${errorText(err)}`);
      progress(`insider: FAIL: ${errorText(err)}`);
    }

    if (fairnessOn) {
      loads.push(os.loadavg()[0] ?? 0);
      try {
        fairness = await fairnessScenario(env);
        progress(
          `fairness: submit→first call median ${fmt(fairness.medianMs)} ms, max ${fmt(fairness.maxMs)} ms ` +
            `during ${fmt(fairness.bigTargets)} targets${fairness.ok ? '' : ` FAIL: ${fairness.problems.join('; ')}`}`,
        );
      } catch (err) {
        failures.push(`fairness scenario: ${errorText(err)}`);
        progress(`fairness: FAIL: ${errorText(err)}`);
      }
    }
  } finally {
    await stopAll();
  }

  loads.push(os.loadavg()[0] ?? 0);
  let table = render(
    header,
    [...rows.map((r) => r.loadAvg1 ?? 0), ...loads],
    rows,
    firstCall,
    budget,
    insider,
    fairness,
  );
  if (stateRows.length > 0) table += `\n\n${renderStateRows(stateRows)}`;
  if (failures.length > 0) table += `\n\nFAIL: ${failures.join('; ')}`;
  const result = {
    machine,
    date: date.toISOString(),
    settings: {
      concurrency: K,
      batchSize: BATCH,
      sizes,
      latenciesMs: latencies,
      quick,
      budget: {
        syncs: BUDGET_SYNCS,
        batchesPerSync: budgetBatches,
        batchSize: BUDGET_BATCH_SIZE,
        concurrency: BUDGET_CONCURRENCY,
        requestsPerMinute: BUDGET_RPM,
        minUsed: quick ? undefined : BUDGET_MIN_USED,
      },
      largeRows: {
        from: LARGE_ROW,
        maxRunEvents: MAX_RUN_EVENTS,
        maxRunBytes: MAX_RUN_BYTES,
        maxWorkerRssMb: MAX_WORKER_RSS_MB,
      },
      insider: {
        hiddenLimit: INSIDER_HIDDEN_LIMIT,
        syncs: INSIDER_SYNCS,
        updatesPerSync: INSIDER_UPDATES,
        requestsPerMinute: INSIDER_RPM,
        maxOversize: INSIDER_MAX_OVERSIZE,
      },
      fairness: fairnessOn
        ? {
            bigTargets: fairnessTargets,
            latencyMs: FAIRNESS_LATENCY_MS,
            smallSyncs: FAIRNESS_SMALL_SYNCS,
            smallTargets: SMALL_TARGETS,
            spacingMs: FAIRNESS_SPACING_MS,
            goalMs: quick ? undefined : FAIRNESS_GOAL_MS,
          }
        : undefined,
    },
    loadAvg1AtStart,
    rows,
    firstCall,
    budget,
    insider,
    fairness,
    stateRows,
    failures,
    ok:
      failures.length === 0 &&
      rows.every((r) => r.ok) &&
      stateRows.every((r) => r.ok) &&
      (firstCall ?? []).every((f) => f.ok) &&
      budget?.ok === true &&
      insider?.ok === true &&
      (!fairnessOn || fairness?.ok === true),
  };
  writeFileSync(path.join(artifacts, 'bench.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(path.join(artifacts, 'bench.md'), `${table}\n`);
  process.stdout.write(`${table}\n`);
  if (!result.ok) process.exitCode = 1;
}

main().catch((err: unknown) => {
  killWorkers();
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
