/**
 * `npm run chaos -- --soak 10m`: for the given time, keeps mixed syncs running (Octogen inline, by
 * reference with corrections by update or by signal, a fan-out with continue-as-new, Insider with
 * rejections and warnings, and a schedule every 30 s) on two workers, one of which is SIGKILLed
 * and restarted every 40-70 s. Samples the steady worker's RSS and the running syncs' history sizes
 * every 10 s; at the end checks the promise for every sync. Passes with 0 lost, every invariant kept,
 * and the last minute's peak RSS within 20 % of the second minute's.
 * Writes .artifacts/soak.md and soak.json; prints the headline.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import {
  createSyncSchedule,
  deleteSyncSchedule,
  describeSyncSchedule,
  startSync,
  type SyncOptions,
  type SyncRequest,
} from '../client/index.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import { seededRandom } from '../simulators/faults.ts';
import { makeInsiderItems, startInsiderSimulator } from '../simulators/insider.ts';
import { startOctogenSimulator } from '../simulators/octogen.ts';
import type { Ctx } from './context.ts';
import { firstPassSettled, pick, retrying, settle, taken, workerEnv, Workers } from './harness.ts';
import { checkSync, insider, type Expectation } from './invariant.ts';
import { listAll, sleep, type Evaluation } from './scenarios.ts';
import { insiderEnv, insiderFixture } from './scenarios/insider.ts';
import {
  corrections,
  octogenEnv,
  octogenExpectation,
  octogenFixture,
  octogenSimKeys,
  sendBySignal,
  sendByUpdate,
} from './scenarios/octogen-fixture.ts';
import { startChaosEnv } from './setup.ts';
import { makeOctogenProducts } from '../simulators/octogen.ts';
import { CHAOS_CATALOG } from './scenarios.ts';

const progress = (line: string) => process.stderr.write(`soak: ${line}\n`);

/** `--soak 10m` / `--soak=90s` in argv, in milliseconds; undefined without --soak. */
export function soakDuration(argv: string[]): number | undefined {
  const i = argv.findIndex((a) => a === '--soak' || a.startsWith('--soak='));
  if (i < 0) return undefined;
  const raw = argv[i]!.includes('=') ? argv[i]!.split('=')[1]! : (argv[i + 1] ?? '10m');
  const m = /^(\d+)(s|m|h)?$/.exec(raw.trim());
  if (!m) throw new Error(`--soak takes a duration such as 10m or 90s, got ${JSON.stringify(raw)}`);
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'm') as 's' | 'm' | 'h'];
}

const FAST = { callAttempts: 30, callInitialInterval: '100ms', callMaximumInterval: '1s' } as const;
const IN_FLIGHT = 3;
const CATALOG = 20_000;
const INSIDER_ITEMS = 5_000;

interface SyncResult {
  shape: string;
  workflowId: string;
  evaluation?: Evaluation;
  error?: string;
}

interface Sample {
  at: number;
  steadyRssMb: number;
  churnRssMb: number;
  maxHistoryEvents: number;
  maxHistoryBytes: number;
}

interface Soak {
  ctx: Ctx;
  rnd: () => number;
  octogenUrl: string;
  octogenRequests: Parameters<typeof checkSync>[2];
  insiderRequests: Parameters<typeof checkSync>[2];
  taskQueue: string;
  running: Set<string>;
}

// ---------------------------------------------------------------------------------------------
// The sync shapes
// ---------------------------------------------------------------------------------------------

type Shape = (s: Soak, n: number) => Promise<SyncResult>;

async function start(s: Soak, req: SyncRequest): Promise<string> {
  const { workflowId } = await retrying(() => startSync(s.ctx.client, req, s.taskQueue), s.ctx.deadline);
  s.running.add(workflowId);
  return workflowId;
}

async function finishOctogen(s: Soak, shape: string, workflowId: string, x: Expectation): Promise<SyncResult> {
  const r = await settle(s.ctx.client, workflowId, s.ctx.deadline);
  s.running.delete(workflowId);
  return { shape, workflowId, evaluation: checkSync(r.report, r.listed, s.octogenRequests, x, r.abortReason) };
}

const inlineOctogen: Shape = async (s) => {
  const products = makeOctogenProducts(CHAOS_CATALOG, 300);
  const options: SyncOptions = { ...FAST, batchSize: 50, resubmissionWindow: '0s' };
  const targets = products.map((p) => ({ uuid: p.uuid }));
  const workflowId = await start(s, { provider: 'octogen', targets, options });
  const x: Expectation = {
    ...octogenExpectation({ products, lineUuids: products.map((p) => p.uuid), ghosts: new Set(), file: '' }, 300),
  };
  return finishOctogen(s, 'octogen inline 300', workflowId, x);
};

const correctedOctogen =
  (via: 'update' | 'signal'): Shape =>
  async (s, n) => {
    const f = octogenFixture(s.ctx.dir, `soak-${n}`, 3_000, 0.05, s.rnd);
    const options: SyncOptions = { ...FAST, batchSize: 100, resubmissionWindow: '5m' };
    const workflowId = await start(s, { provider: 'octogen', targetsRef: { file: f.file }, options });
    await firstPassSettled(s.ctx.client, workflowId, s.ctx.deadline);
    const fixes = corrections(f, await listAll(s.ctx.client, workflowId, s.ctx.deadline));
    if (via === 'update') await sendByUpdate(s.ctx.client, workflowId, fixes, s.ctx.deadline);
    else await sendBySignal(s.ctx.client, workflowId, fixes, s.ctx.deadline);
    await taken(s.ctx, workflowId, 3_000 + fixes.length);
    const fixed = new Set(fixes.map((x) => x.fixes ?? ''));
    return finishOctogen(
      s,
      `octogen 3,000, fixed by ${via}`,
      workflowId,
      octogenExpectation(f, 3_000 + fixes.length, { fixed }),
    );
  };

const fanOutOctogen: Shape = async (s, n) => {
  const f = octogenFixture(s.ctx.dir, `soak-${n}`, 12_000, 0, s.rnd);
  const options: SyncOptions = {
    ...FAST,
    batchSize: 250,
    concurrency: 2,
    sliceSize: 3_000,
    slicesPerRun: 2,
    resubmissionWindow: '0s',
  };
  const workflowId = await start(s, { provider: 'octogen', targetsRef: { file: f.file }, options });
  return finishOctogen(s, 'octogen fan-out 12,000', workflowId, octogenExpectation(f, 12_000));
};

const insiderSync: Shape = async (s, n) => {
  const f = insiderFixture(s.ctx.dir, `soak-${n}`, 2_000, s.rnd);
  const options: SyncOptions = { ...FAST, resubmissionWindow: '0s' };
  const workflowId = await start(s, { provider: 'insider', targetsRef: { file: f.file }, options });
  const r = await settle(s.ctx.client, workflowId, s.ctx.deadline);
  s.running.delete(workflowId);
  const x: Expectation = {
    submitted: 2_000,
    ...insider,
    identityOf: (seq) => f.identities[seq],
    mayReject: (seq) => f.unknown.has(seq),
    warnings: f.warned,
  };
  return {
    shape: 'insider 2,000',
    workflowId,
    evaluation: checkSync(r.report, r.listed, s.insiderRequests, x, r.abortReason),
  };
};

const SHAPES: Shape[] = [
  inlineOctogen,
  correctedOctogen('update'),
  correctedOctogen('signal'),
  fanOutOctogen,
  insiderSync,
];

async function runShape(s: Soak, n: number): Promise<SyncResult> {
  const shape = SHAPES[pick(s.rnd, 0, SHAPES.length - 1)]!;
  try {
    return await shape(s, n);
  } catch (err) {
    return {
      shape: shape.name || 'sync',
      workflowId: '',
      error: (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '',
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling
// ---------------------------------------------------------------------------------------------

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

async function sample(s: Soak, steady: Workers, churn: Workers): Promise<Sample> {
  let maxHistoryEvents = 0;
  let maxHistoryBytes = 0;
  for (const id of s.running) {
    const d = await s.ctx.client.workflow
      .getHandle(id)
      .describe()
      .catch(() => undefined);
    if (!d) continue;
    maxHistoryEvents = Math.max(maxHistoryEvents, d.historyLength);
    maxHistoryBytes = Math.max(maxHistoryBytes, d.historySize ?? 0);
  }
  return {
    at: Date.now(),
    steadyRssMb: rssMb(steady.live()[0]?.child.pid),
    churnRssMb: rssMb(churn.live()[0]?.child.pid),
    maxHistoryEvents,
    maxHistoryBytes,
  };
}

/** Peak steady-worker RSS in minute `k` (0-based) of the soak. */
function peakInMinute(samples: Sample[], startedAt: number, k: number): number {
  const inside = samples.filter((x) => x.at - startedAt >= k * 60_000 && x.at - startedAt < (k + 1) * 60_000);
  return Math.max(0, ...inside.map((x) => x.steadyRssMb));
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

export async function runSoak(durationMs: number, seed: number): Promise<number> {
  progress(`seed ${seed}, ${durationMs / 1000} s of mixed syncs with worker kills`);
  const env = await startChaosEnv();
  const ctx = env.ctx;
  const rnd = seededRandom(seed);
  const octo = await startOctogenSimulator({
    keys: octogenSimKeys,
    products: makeOctogenProducts(CHAOS_CATALOG, CATALOG),
    latencyMs: 20,
  });
  const ins = await startInsiderSimulator({
    partnerName: 'chaos-partner',
    token: 'chaos-insider-token',
    items: makeInsiderItems(INSIDER_ITEMS),
    productAttributes: ['material'],
    maxRecords: 500,
    requestsPerMinute: 6_000,
    latencyMs: 20,
  });
  const taskQueue = `chaos-soak-${seed}`;
  const wenv = workerEnv(ctx, taskQueue, {
    ...octogenEnv(octo.url),
    ...insiderEnv(ins.url),
    INSIDER_REQUESTS_PER_MINUTE: '6000',
  });
  const steady = new Workers(wenv);
  const churn = new Workers(wenv);
  steady.spawn();
  churn.spawn();
  const s: Soak = {
    ctx,
    rnd,
    octogenUrl: octo.url,
    octogenRequests: octo.requests,
    insiderRequests: ins.requests,
    taskQueue,
    running: new Set(),
  };
  const startedAt = Date.now();
  const endAt = startedAt + durationMs;
  ctx.deadline = endAt + 10 * 60_000;
  const results: SyncResult[] = [];
  const samples: Sample[] = [];
  const scheduledRuns = new Set<string>();
  let kills = 0;
  try {
    const schedFile = octogenFixture(ctx.dir, 'soak-schedule', 500, 0, rnd).file;
    await createSyncSchedule(ctx.client, {
      id: `soak-${seed}`,
      provider: 'octogen',
      every: '30s',
      source: { file: schedFile },
      options: { ...FAST, resubmissionWindow: '0s' },
      taskQueue,
    });
    const inFlight = new Set<Promise<void>>();
    let n = 0;
    let nextKill = startedAt + pick(rnd, 40_000, 70_000);
    let nextSample = startedAt;
    while (Date.now() < endAt) {
      while (inFlight.size < IN_FLIGHT) {
        const p: Promise<void> = runShape(s, n++).then((r) => {
          results.push(r);
          inFlight.delete(p);
        });
        inFlight.add(p);
      }
      if (Date.now() >= nextKill) {
        await churn.killAndRestart(pick(rnd, 0, 3_000));
        kills += 1;
        nextKill = Date.now() + pick(rnd, 40_000, 70_000);
      }
      if (Date.now() >= nextSample) {
        const x = await sample(s, steady, churn);
        samples.push(x);
        const d = await describeSyncSchedule(ctx.client, `soak-${seed}`).catch(() => undefined);
        d?.recentRuns.forEach((r) => scheduledRuns.add(r.workflowId));
        progress(
          `${Math.round((x.at - startedAt) / 1000)} s: ${results.length} syncs done, steady RSS ${x.steadyRssMb} MB, history ${x.maxHistoryEvents} events`,
        );
        nextSample = Date.now() + 10_000;
      }
      await sleep(500);
    }
    const d = await describeSyncSchedule(ctx.client, `soak-${seed}`).catch(() => undefined);
    d?.recentRuns.forEach((r) => scheduledRuns.add(r.workflowId));
    await deleteSyncSchedule(ctx.client, `soak-${seed}`);
    progress(`time up: draining ${inFlight.size} syncs and checking ${scheduledRuns.size} scheduled runs`);
    await Promise.all(inFlight);
    const schedFixture = octogenFixture(ctx.dir, 'soak-schedule', 500, 0, seededRandom(0));
    for (const id of scheduledRuns) {
      try {
        const r = await settle(ctx.client, `${id}/sync`, ctx.deadline);
        const ev = checkSync(r.report, r.listed, octo.requests, octogenExpectation(schedFixture, 500), r.abortReason);
        results.push({ shape: 'scheduled 500', workflowId: `${id}/sync`, evaluation: ev });
      } catch (err) {
        results.push({ shape: 'scheduled 500', workflowId: `${id}/sync`, error: String(err).split('\n')[0] ?? '' });
      }
    }
    // A driver that failed leaves its sync in `running`: its history is kept for a replay
    // (`Worker.runReplayHistory`), the first thing a nondeterminism error needs.
    for (const id of s.running) {
      const history = await ctx.client.workflow
        .getHandle(id)
        .fetchHistory()
        .catch(() => undefined);
      if (history) keepHistory(id, history);
    }
  } finally {
    await steady.stop();
    await churn.stop();
    await octo.close();
    await ins.close();
    await env.close();
  }
  return report(results, samples, startedAt, durationMs, seed, kills);
}

function report(
  results: SyncResult[],
  samples: Sample[],
  startedAt: number,
  durationMs: number,
  seed: number,
  kills: number,
): number {
  const lost = results.reduce((a, r) => a + (r.evaluation?.lost ?? 0), 0);
  const broken = results.filter((r) => !r.evaluation?.invariantOk);
  const targets = results.reduce((a, r) => a + (r.evaluation?.counts.submitted ?? 0), 0);
  const minutes = Math.floor(durationMs / 60_000);
  const second = peakInMinute(samples, startedAt, 1);
  const last = peakInMinute(samples, startedAt, Math.max(1, minutes - 1));
  const rssFlat = second > 0 && last <= second * 1.2;
  const maxEvents = Math.max(0, ...samples.map((x) => x.maxHistoryEvents));
  const maxBytes = Math.max(0, ...samples.map((x) => x.maxHistoryBytes));
  const ok = broken.length === 0 && lost === 0 && rssFlat;
  const shapes = [...new Set(results.map((r) => r.shape))].map(
    (sh) => `${sh}: ${results.filter((r) => r.shape === sh).length}`,
  );
  const headline =
    `${ok ? 'PASS' : 'FAIL'}: ${durationMs / 60_000} min, seed ${seed}, ${results.length} syncs (${targets} targets), ` +
    `${kills} worker kills, ${lost} lost, ${broken.length} syncs breaking the promise; steady worker peak RSS ` +
    `${second} MB in minute 2, ${last} MB in the last minute (${rssFlat ? 'within' : 'over'} 20 %); largest running history ` +
    `${maxEvents} events, ${Math.round(maxBytes / 1024)} KB`;
  const md = [
    '# catalog-sync soak',
    '',
    `${new Date().toISOString()}. ${headline}`,
    '',
    `Syncs by shape: ${shapes.join(', ')}.`,
    '',
    '## Samples (every 10 s)',
    '',
    '| s | steady RSS MB | churned RSS MB | max history events | max history KB |',
    '| - | - | - | - | - |',
    ...samples.map(
      (x) =>
        `| ${Math.round((x.at - startedAt) / 1000)} | ${x.steadyRssMb} | ${x.churnRssMb} | ${x.maxHistoryEvents} | ${Math.round(x.maxHistoryBytes / 1024)} |`,
    ),
    '',
    '## Syncs',
    '',
    ...results.map((r) => {
      const e = r.evaluation;
      const what = e
        ? `${e.counts.accepted}/${e.counts.submitted} accepted, ${e.counts.rejected} rejected, ${e.counts.superseded} superseded, ${e.processedTwice} processed twice`
        : `error: ${r.error ?? ''}`;
      const problems = e && e.problems.length > 0 ? ` PROBLEMS: ${e.problems.join('; ')}` : '';
      return `- ${e?.invariantOk ? 'ok' : 'FAIL'} ${r.shape} ${r.workflowId}: ${what}${problems}`;
    }),
    '',
  ].join('\n');
  const artifacts = path.join(projectRoot(), '.artifacts');
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(path.join(artifacts, 'soak.md'), md);
  writeFileSync(
    path.join(artifacts, 'soak.json'),
    `${JSON.stringify({ seed, durationMs, ok, kills, results, samples }, null, 2)}\n`,
  );
  process.stdout.write(`${headline}\n`);
  progress('written to .artifacts/soak.md and .artifacts/soak.json');
  return ok ? 0 : 1;
}

/** Writes a history as `.artifacts/histories/<workflow id>.binpb`, the form test/histories/ keeps. */
function keepHistory(workflowId: string, history: proto.temporal.api.history.v1.IHistory): void {
  const dir = path.join(projectRoot(), '.artifacts', 'histories');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${workflowId.replace(/[^\w.-]+/g, '_')}.binpb`);
  writeFileSync(file, proto.temporal.api.history.v1.History.encode(history).finish());
  progress(`kept the history of ${workflowId}: ${file}`);
}
