/**
 * `npm run bench`: catalog-sync against the plain-Node baseline, side by side on a local Temporal
 * dev server (in memory) and the Octogen simulator, in one run.
 *
 *   BENCH_SIZES=10000,100000,1000000   targets per sync (default)
 *   BENCH_LATENCIES=0,200              simulator answer latency in ms (default)
 *   BENCH_BUDGET_BATCHES=200           batches per sync in the budget run (default 200; 20 when
 *                                      BENCH_SIZES or BENCH_LATENCIES is set: a quick run)
 *
 * Progress goes to stderr, one line per scenario; stdout gets only the header and the tables.
 * Results: .artifacts/bench.json and .artifacts/bench.md.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { awaitReport, startSync } from '../client/index.ts';
import { DEFAULT_OPTIONS, providerTaskQueue, type Counts, type SyncOptions } from '../contracts/index.ts';
import { startDevServer, type DevServer } from '../scripts/dev-server.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import {
  makeOctogenProducts,
  startOctogenSimulator,
  type OctogenProduct,
  type OctogenSimulator,
} from '../simulators/octogen.ts';
import { workflowsPath } from '../worker/worker.ts';
import { runBaseline, type BaselineResult } from './baseline.ts';
import {
  historyStats,
  killWorkers,
  markdownTable,
  percentile,
  startBenchWorker,
  withTimeout,
  type BenchWorker,
  type HistoryStats,
} from './measure.ts';

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

const K = 4;
const BATCH = 500;
const KEY = 'bench-octogen-key';
const CATALOG = 'alpha';
const SMALL_SYNCS = 10;
const SMALL_TARGETS = 10;
const BUDGET_RPM = 600;
const BUDGET_SYNCS = 3;
const BUDGET_BATCH_SIZE = 5;
const BUDGET_CONCURRENCY = 8;

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

interface Env {
  server: DevServer;
  client: Client;
  bundlePath: string;
  dir: string;
  products: OctogenProduct[];
  sims: Map<number, OctogenSimulator>;
  files: Map<number, string>;
}

function ndjson(file: string, products: OctogenProduct[]): string {
  const lines = products.map((p) => JSON.stringify({ uuid: p.uuid }));
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** Each size's target file, written once. */
function targetsFile(env: Env, n: number): string {
  let file = env.files.get(n);
  if (!file) {
    file = ndjson(path.join(env.dir, `targets-${n}.ndjson`), env.products.slice(0, n));
    env.files.set(n, file);
  }
  return file;
}

async function simFor(env: Env, latencyMs: number): Promise<OctogenSimulator> {
  let sim = env.sims.get(latencyMs);
  if (!sim) {
    sim = await startOctogenSimulator({ keys: { [KEY]: [CATALOG] }, products: env.products, latencyMs });
    env.sims.set(latencyMs, sim);
  }
  return sim;
}

async function withWorker<T>(
  env: Env,
  name: string,
  workerEnv: Record<string, string>,
  fn: (taskQueue: string, worker: BenchWorker) => Promise<T>,
): Promise<T> {
  const taskQueue = `bench-${name}-${randomUUID().slice(0, 8)}`;
  const worker = await startBenchWorker({
    client: env.client,
    taskQueue,
    providerTaskQueue: providerTaskQueue(taskQueue, 'octogen'),
    env: {
      TEMPORAL_ADDRESS: env.server.address,
      TEMPORAL_NAMESPACE: env.server.namespace,
      CATALOG_SYNC_TASK_QUEUE: taskQueue,
      CATALOG_SYNC_WORKFLOW_BUNDLE: env.bundlePath,
      OCTOGEN_PLATFORM_API_KEY: KEY,
      ...workerEnv,
    },
  });
  try {
    return await fn(taskQueue, worker);
  } finally {
    await worker.stop();
  }
}

/** Starts a sync and waits for its report; a sync that overruns is terminated. */
async function syncToReport(
  env: Env,
  taskQueue: string,
  request: Parameters<typeof startSync>[1],
  timeoutMs: number,
): Promise<{ workflowId: string; counts: Counts; abortReason?: string }> {
  const { workflowId } = await startSync(env.client, request, taskQueue);
  try {
    const { report, abortReason } = await withTimeout(awaitReport(env.client, workflowId), timeoutMs, workflowId);
    return { workflowId, counts: report.counts, ...(abortReason !== undefined ? { abortReason } : {}) };
  } catch (err) {
    await env.client.workflow
      .getHandle(workflowId)
      .terminate('bench timeout')
      .catch(() => undefined);
    throw err;
  }
}

async function sizeScenario(env: Env, n: number, latencyMs: number): Promise<SizeRow> {
  const row: SizeRow = { targets: n, latencyMs, ok: false, problems: [] };
  const file = targetsFile(env, n);
  const sim = await simFor(env, latencyMs);
  await withWorker(env, `${n}-${latencyMs}ms`, { OCTOGEN_BASE_URL: sim.url }, async (taskQueue, worker) => {
    sim.reset();
    const base = await runBaseline({ file, baseUrl: sim.url, apiKey: KEY, concurrency: K, batchSize: BATCH });
    row.baseline = { ...base, targetsPerSecond: n / (base.wallMs / 1000) };
    if (base.accepted !== n) row.problems.push(`baseline accepted ${base.accepted} != ${n}`);

    sim.reset();
    const options: SyncOptions = { concurrency: K, resubmissionWindow: '0s' };
    const t0 = Date.now();
    const started = performance.now();
    const sync = await syncToReport(
      env,
      taskQueue,
      { provider: 'octogen', targetsRef: { file }, options },
      120_000 + n,
    );
    const wallMs = performance.now() - started;
    const first = sim.requests[0]?.at;
    const last = sim.requests[sim.requests.length - 1]?.at;
    const span = first !== undefined && last !== undefined ? last + latencyMs - first : undefined;
    const rss = worker.peakRssMb();
    if (sync.abortReason !== undefined) row.problems.push(`aborted: ${sync.abortReason}`);
    row.problems.push(...checkCounts(sync.counts, n));
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
  });
  row.ok = row.problems.length === 0;
  return row;
}

async function firstCallScenario(env: Env): Promise<FirstCallResult[]> {
  const sim = await simFor(env, 0);
  const files = Array.from({ length: SMALL_SYNCS + 1 }, (_, i) => {
    const products = env.products.slice(i * SMALL_TARGETS, (i + 1) * SMALL_TARGETS);
    return ndjson(path.join(env.dir, `small-${i}.ndjson`), products);
  });
  const inline = Array.from({ length: SMALL_SYNCS + 1 }, (_, i) =>
    env.products.slice(i * SMALL_TARGETS, (i + 1) * SMALL_TARGETS).map((p) => ({ uuid: p.uuid })),
  );
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
  const products = env.products.slice(0, BUDGET_SYNCS * perSync);
  const sim = await startOctogenSimulator({
    keys: { [KEY]: [CATALOG] },
    products,
    latencyMs: 0,
    requestsPerMinute: BUDGET_RPM,
  });
  try {
    const files = Array.from({ length: BUDGET_SYNCS }, (_, i) =>
      ndjson(path.join(env.dir, `budget-${i}.ndjson`), products.slice(i * perSync, (i + 1) * perSync)),
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
      return {
        syncs: BUDGET_SYNCS,
        batchesPerSync: budgetBatches,
        batchSize: BUDGET_BATCH_SIZE,
        concurrency: BUDGET_CONCURRENCY,
        budgetPerMinute: BUDGET_RPM,
        providerCalls: calls,
        wallMs,
        achievedPerMinute: span > 0 ? (calls / span) * 60_000 : Number.NaN,
        rateLimited: sim.rateLimited,
        workerPeakRssMb: worker.peakRssMb(),
        ok: problems.length === 0,
        problems,
      };
    });
  } finally {
    await sim.close();
  }
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
            fmt(budget.rateLimited),
            fmt(budget.workerPeakRssMb),
            budget.ok ? 'ok' : `FAIL: ${budget.problems.join('; ')}`,
          ],
        ],
        [false, true, true, true, true, true, true, false],
      ),
    );
  }
  parts.push(
    '',
    `K=${K} batches in flight everywhere; batches of ${BATCH}; targets by reference (NDJSON file); resubmissionWindow 0s. ` +
      'ratio = catalog-sync t/s ÷ baseline t/s on the same simulator. runs = parent runs + slice children. ' +
      'Largest event = the largest encoded history event (its payloads included) of any run. ' +
      "Where the time goes: from the simulator (calls in flight = calls × latency ÷ span) and the histories' " +
      'event times (means per slice child or per sendBatch activity). ' +
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

  const maxProducts = Math.max(
    ...sizes,
    (SMALL_SYNCS + 1) * SMALL_TARGETS,
    BUDGET_SYNCS * budgetBatches * BUDGET_BATCH_SIZE,
  );
  const setupStarted = performance.now();
  const artifacts = path.join(projectRoot(), '.artifacts');
  mkdirSync(artifacts, { recursive: true });
  const bundlePath = path.join(artifacts, 'workflow-bundle.js');
  const [server, bundle] = await Promise.all([
    startDevServer({ headless: true, log: 'quiet' }),
    bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: quietLogger }),
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
    products: makeOctogenProducts(CATALOG, maxProducts),
    sims: new Map(),
    files: new Map(),
  };
  const stopAll = async () => {
    killWorkers();
    await Promise.all([...env.sims.values()].map((s) => s.close().catch(() => undefined)));
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
    `setup: dev server ${server.address}, workflow bundle, ${fmt(maxProducts)} products in ${fmt((performance.now() - setupStarted) / 1000, 1)} s`,
  );

  const rows: SizeRow[] = [];
  /** Load averages after the first-call and budget scenarios (rows carry their own). */
  const loads: number[] = [];
  let firstCall: FirstCallResult[] | undefined;
  let budget: BudgetResult | undefined;
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
  } finally {
    await stopAll();
  }

  loads.push(os.loadavg()[0] ?? 0);
  let table = render(header, [...rows.map((r) => r.loadAvg1 ?? 0), ...loads], rows, firstCall, budget);
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
      },
    },
    loadAvg1AtStart,
    rows,
    firstCall,
    budget,
    failures,
    ok: failures.length === 0 && rows.every((r) => r.ok) && (firstCall ?? []).every((f) => f.ok) && budget?.ok === true,
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
