/**
 * `npm run chaos`: a bounded chaos run proving the product's promise under faults. Each scenario
 * runs CHAOS_RUNS times (default 3), each run a by-reference sync of CHAOS_TARGETS (default 3,000)
 * Octogen targets against the simulator, with its own seed for every random choice:
 *
 *   worker killed + restarted   SIGKILL after a random number of provider calls, a new worker
 *   two workers, one killed     two worker processes on one task queue, one SIGKILLed
 *   dev server restarted        `temporal server start-dev` stopped and started on its SQLite file
 *   storm: ...                  simulator fault storms (503/429, resets/truncation, 202 bad body,
 *                               answers slower than the worker's request timeout)
 *
 * and, on every other sync shape (chaos/scenarios/, checked by chaos/invariant.ts):
 *
 *   fan-out + continue-as-new   30,000 targets by reference, 6 slices over 3 runs, 1 % rejected;
 *                               killed in a slice, at the run boundary and in the window
 *   resubmit under storm        10 % rejected, corrected by update and by signal under 503/429,
 *                               a kill and a dev server restart; supersession exact
 *   insider                     a hidden record limit and a budget under 500/429, two kills
 *   shared budget               three syncs on one account budget, one of two workers killed
 *   partition: ...              a loopback TCP proxy (chaos/proxy.ts) cut and restored between
 *                               the worker and the server, or the worker and the provider
 *   state store: ...            a changed-only sync run twice on one target-state store, the
 *                               second (5 % changed) with PostgreSQL restarted, its disk full,
 *                               SQLite's disk full, or the worker killed (scenarios/state-store.ts)
 *   spool disk full             a start refused on a full spool, then the disk filled mid-sync
 *
 *   npm run chaos -- --soak 10m mixed syncs for the given time with kills (chaos/soak.ts)
 *
 *   CHAOS_RUNS=1                runs per scenario
 *   CHAOS_SEED=1234             base seed (default: random; printed)
 *   CHAOS_RUN_SEED=5678         one run per selected scenario with this run seed (a failing run's
 *                               line prints the command that replays it)
 *   CHAOS_SCENARIOS=storm,kill  only scenarios whose name contains one of these
 *   CHAOS_TARGETS=3000          targets per sync
 *
 * Progress on stderr; the table (markdown) on stdout, also in .artifacts/chaos.md and chaos.json.
 * Exits non-zero when a run breaks the promise (counts, a lost target, a target in two states).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startSync } from '../client/index.ts';
import { startDevServer } from '../scripts/dev-server.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import { startChaosEnv } from './setup.ts';
import { runSoak, soakDuration } from './soak.ts';
import { errorText, type Ctx, type RunRecord, type Scenario } from './context.ts';
import { NEW_SCENARIOS } from './scenarios/index.ts';
import { seededRandom } from '../simulators/faults.ts';
import { makeOctogenProducts, startOctogenSimulator } from '../simulators/octogen.ts';
import { createSyncWorker, type SyncWorker } from '../worker/worker.ts';
import {
  awaitOutcome,
  CHAOS_CATALOG,
  CHAOS_KEY,
  CHAOS_OPTIONS,
  evaluate,
  listAll,
  sleep,
  spawnWorkerProcess,
  STORMS,
  until,
  writeTargetsFile,
  type Evaluation,
  type Storm,
  type WorkerEnv,
  type WorkerProcess,
} from './scenarios.ts';

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  return n;
}

const RUNS = Math.max(1, intEnv('CHAOS_RUNS', 3));
const TARGETS = Math.max(100, intEnv('CHAOS_TARGETS', 3000));
const BASE_SEED = intEnv('CHAOS_SEED', Math.floor(Math.random() * 2 ** 31));
const RUN_SEED = process.env.CHAOS_RUN_SEED ? intEnv('CHAOS_RUN_SEED', 0) : undefined;
const RUN_TIMEOUT_MS = intEnv('CHAOS_RUN_TIMEOUT_S', 240) * 1000;
const ONLY = (process.env.CHAOS_SCENARIOS ?? '')
  .split(',')
  .map((s) => s.trim().toLowerCase())
  .filter(Boolean);

const progress = (line: string) => process.stderr.write(`chaos: ${line}\n`);

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

type Disruption = 'kill-restart' | 'two-workers-kill-one' | 'server-restart' | 'storm';

interface Classic {
  name: string;
  disruption: Disruption;
  storm?: Storm;
}

/** The first scenarios: one small Octogen sync by reference, every target accepted. */
const CLASSIC: Classic[] = [
  { name: 'worker killed + restarted', disruption: 'kill-restart' },
  { name: 'two workers, one killed', disruption: 'two-workers-kill-one' },
  { name: 'dev server restarted', disruption: 'server-restart' },
  ...STORMS.map((storm): Classic => ({ name: storm.name, disruption: 'storm', storm })),
];

/** The scenario table: every row runs CHAOS_RUNS seeded times. */
const ALL_SCENARIOS: Scenario[] = [
  ...CLASSIC.map((c): Scenario => ({ name: c.name, run: (ctx, seed) => runOnce(ctx, c, seed) })),
  ...NEW_SCENARIOS,
];
const SCENARIOS = ALL_SCENARIOS.filter((s) => ONLY.length === 0 || ONLY.some((o) => s.name.toLowerCase().includes(o)));

/** The classic scenarios' file of TARGETS products, written once. */
let classicFixture: { targetsFile: string; products: ReturnType<typeof makeOctogenProducts> } | undefined;
function classic(ctx: Ctx) {
  if (!classicFixture) {
    const products = makeOctogenProducts(CHAOS_CATALOG, TARGETS);
    classicFixture = { products, targetsFile: writeTargetsFile(ctx.dir, products) };
  }
  return classicFixture;
}

async function runOnce(ctx: Ctx, sc: Classic, seed: number): Promise<RunRecord> {
  const { products, targetsFile } = classic(ctx);
  const rnd = seededRandom(seed);
  const started = Date.now();
  const deadline = ctx.deadline;
  const sim = await startOctogenSimulator({
    keys: { [CHAOS_KEY]: [CHAOS_CATALOG] },
    products,
    latencyMs: 50,
  });
  const taskQueue = `chaos-${sc.disruption}-${seed}`;
  const env: WorkerEnv = {
    TEMPORAL_ADDRESS: ctx.server.address,
    TEMPORAL_NAMESPACE: ctx.server.namespace,
    CATALOG_SYNC_TASK_QUEUE: taskQueue,
    CATALOG_SYNC_WORKFLOW_BUNDLE: ctx.bundlePath,
    OCTOGEN_BASE_URL: sim.url,
    OCTOGEN_PLATFORM_API_KEY: CHAOS_KEY,
  };
  const workers: WorkerProcess[] = [];
  let inProcess: { worker: SyncWorker; running: Promise<void> } | undefined;
  const details: string[] = [];
  // A random moment: after 1..20 of the ~TARGETS/100 provider calls of a clean run.
  const callsBefore = 1 + Math.floor(rnd() * Math.min(20, Math.max(1, TARGETS / 100 - 5)));
  const waitForCalls = async () => {
    if (!(await until(() => sim.requests.length >= callsBefore, 120_000))) {
      throw new Error(`no ${callsBefore} provider calls within 120 s; worker output: ${workers[0]?.output() ?? ''}`);
    }
  };
  try {
    if (sc.storm) {
      sim.faults.rate(sc.storm.rate, sc.storm.faults, seed);
      details.push(`${sc.storm.faults.length} fault kinds at rate ${sc.storm.rate}`);
    }
    if (sc.storm?.requestTimeoutMs !== undefined) {
      // No environment variable sets the request timeout: this storm runs an in-process worker.
      const worker = await createSyncWorker({
        connection: ctx.native,
        namespace: ctx.server.namespace,
        taskQueue,
        workflowBundlePath: ctx.bundlePath,
        activityDeps: {
          env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: CHAOS_KEY },
          requestTimeoutMs: sc.storm.requestTimeoutMs,
        },
      });
      inProcess = { worker, running: worker.run() };
      details.push(`in-process worker, request timeout ${sc.storm.requestTimeoutMs} ms`);
    } else {
      workers.push(spawnWorkerProcess(env));
      if (sc.disruption === 'two-workers-kill-one') workers.push(spawnWorkerProcess(env));
    }

    const { workflowId } = await startSync(
      ctx.client,
      { provider: 'octogen', targetsRef: { file: targetsFile }, options: CHAOS_OPTIONS },
      taskQueue,
    );

    if (sc.disruption === 'kill-restart' || sc.disruption === 'two-workers-kill-one') {
      const victim = sc.disruption === 'kill-restart' ? 0 : Math.floor(rnd() * 2);
      await waitForCalls();
      const seen = sim.requests.length;
      await workers[victim]!.kill();
      details.push(`worker ${victim + 1}/${workers.length} SIGKILLed after ${seen} calls`);
      if (sc.disruption === 'kill-restart') workers.push(spawnWorkerProcess(env));
    } else if (sc.disruption === 'server-restart') {
      await waitForCalls();
      const seen = sim.requests.length;
      const down = 500 + Math.floor(rnd() * 2500);
      await ctx.server.stop();
      await sleep(down);
      ctx.server = await startDevServer({ headless: true, dbFile: ctx.dbFile, port: ctx.port, log: 'quiet' });
      details.push(`server stopped after ${seen} calls, down ${down} ms`);
    }

    const outcome = await awaitOutcome(ctx.client, workflowId, deadline);
    const listed = await listAll(ctx.client, workflowId, deadline);
    const evaluation = evaluate({
      products,
      report: outcome.report,
      listed,
      requests: sim.requests,
      abortReason: outcome.abortReason,
    });
    return {
      scenario: sc.name,
      seed,
      wallMs: Date.now() - started,
      detail: details.join('; '),
      evaluation,
      ok: evaluation.invariantOk,
    };
  } catch (err) {
    return {
      scenario: sc.name,
      seed,
      wallMs: Date.now() - started,
      detail: details.join('; '),
      error: errorText(err),
      ok: false,
    };
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    if (inProcess) {
      inProcess.worker.shutdown();
      await inProcess.running.catch(() => undefined);
    }
    await sim.close();
  }
}

/** awaitOutcome's deadline is per run; a run that never ends is bounded here too. */
async function bounded(ctx: Ctx, sc: Scenario, seed: number): Promise<RunRecord> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<RunRecord>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          scenario: sc.name,
          seed,
          wallMs: RUN_TIMEOUT_MS + 30_000,
          detail: '',
          error: `did not finish within ${RUN_TIMEOUT_MS / 1000 + 30} s`,
          ok: false,
        }),
      RUN_TIMEOUT_MS + 30_000,
    );
  });
  ctx.deadline = Date.now() + RUN_TIMEOUT_MS;
  try {
    return await Promise.race([sc.run(ctx, seed), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

const HEADER = [
  'scenario',
  'runs',
  'seeds',
  'targets',
  'accepted',
  'rejected',
  'failed',
  'superseded',
  'pending',
  'invariant',
  'lost',
  'in two states',
  'duplicate deliveries',
  'processed twice',
  'max wall s',
];

function tableRows(records: RunRecord[]): string[][] {
  const names = [...new Set(records.map((r) => r.scenario))];
  return names.map((name) => {
    const rs = records.filter((r) => r.scenario === name);
    const sum = (f: (e: Evaluation) => number) => rs.reduce((a, r) => a + (r.evaluation ? f(r.evaluation) : 0), 0);
    return [
      name,
      String(rs.length),
      rs.map((r) => r.seed).join(', '),
      String(sum((e) => e.counts.submitted)),
      String(sum((e) => e.counts.accepted)),
      String(sum((e) => e.counts.rejected)),
      String(sum((e) => e.counts.failed)),
      String(sum((e) => e.counts.superseded)),
      String(sum((e) => e.counts.pending)),
      rs.every((r) => r.ok) ? 'ok' : 'FAIL',
      String(sum((e) => e.lost)),
      String(sum((e) => e.inTwoStates)),
      String(sum((e) => e.duplicateDeliveries)),
      String(sum((e) => e.processedTwice)),
      (Math.max(...rs.map((r) => r.wallMs)) / 1000).toFixed(1),
    ];
  });
}

function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

function runLines(records: RunRecord[]): string[] {
  return records.map((r) => {
    const e = r.evaluation;
    const what = e
      ? `${e.counts.accepted}/${e.counts.submitted} accepted, ${e.counts.failed} failed, ${e.providerCalls} calls, ` +
        `${e.duplicateDeliveries} received twice, ${e.processedTwice} processed twice`
      : `error: ${r.error ?? ''}`;
    const problems = e && e.problems.length > 0 ? ` PROBLEMS: ${e.problems.join('; ')}` : '';
    return `- ${r.ok ? 'ok' : 'FAIL'} ${r.scenario}, seed ${r.seed}, ${(r.wallMs / 1000).toFixed(1)} s: ${what}${r.detail ? ` (${r.detail})` : ''}${problems}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const soak = soakDuration(process.argv.slice(2));
  if (soak !== undefined) return runSoak(soak, BASE_SEED);
  progress(
    `base seed ${BASE_SEED} (CHAOS_SEED=${BASE_SEED} repeats it), ${RUNS} run(s) per scenario, ${TARGETS} targets`,
  );
  progress('starting a Temporal dev server (SQLite) and bundling the workflows');
  const env = await startChaosEnv();
  const ctx = env.ctx;

  const seeds = seededRandom(BASE_SEED);
  const records: RunRecord[] = [];
  const started = Date.now();
  try {
    for (const sc of SCENARIOS) {
      for (let i = 0; i < (RUN_SEED === undefined ? RUNS : 1); i++) {
        const drawn = Math.floor(seeds() * 2 ** 31);
        const seed = RUN_SEED ?? drawn;
        progress(`${sc.name} run ${i + 1}/${RUNS}, seed ${seed} ...`);
        const record = await bounded(ctx, sc, seed);
        records.push(record);
        progress(runLines([record])[0]!.slice(2));
        if (!record.ok) progress(`replay: CHAOS_SCENARIOS='${sc.name}' CHAOS_RUN_SEED=${seed} npm run chaos`);
      }
    }
  } finally {
    await env.close();
  }

  const ok = records.every((r) => r.ok);
  const table = markdownTable(HEADER, tableRows(records));
  const md = [
    `# catalog-sync chaos run`,
    '',
    `${new Date().toISOString()}, base seed ${BASE_SEED}, ${RUNS} run(s) per scenario, ${TARGETS} Octogen targets per sync ` +
      `by reference (batch 100, concurrency 4), simulator latency 50 ms, ${((Date.now() - started) / 1000).toFixed(0)} s in all.`,
    '',
    table,
    '',
    'invariant: submitted = accepted + rejected + failed + superseded, nothing pending, every target of the file counted, ' +
      'listed once, and every target reported accepted was taken by the provider. lost: targets counted nowhere, pending, ' +
      'or reported accepted but never taken. duplicate deliveries: targets the simulator received in more than one request ' +
      '(any answer, including injected faults). processed twice: targets the simulator actually processed more than once ' +
      '(the answer was computed, even if the worker never read it).',
    '',
    '## Runs',
    '',
    ...runLines(records),
    '',
    `**${ok ? 'PASS' : 'FAIL'}**`,
    '',
  ].join('\n');
  const artifacts = path.join(projectRoot(), '.artifacts');
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(path.join(artifacts, 'chaos.md'), md);
  writeFileSync(
    path.join(artifacts, 'chaos.json'),
    `${JSON.stringify({ baseSeed: BASE_SEED, runs: RUNS, targets: TARGETS, ok, records }, null, 2)}\n`,
  );
  process.stdout.write(`${md}\n`);
  progress(`${ok ? 'PASS' : 'FAIL'}; written to .artifacts/chaos.md and .artifacts/chaos.json`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
