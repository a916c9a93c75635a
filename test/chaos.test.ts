/**
 * The CI slice of `npm run chaos` (chaos/run.ts): one fault storm, one worker kill/restart, a
 * fanned-out sync that continues as new losing its worker in a slice, and corrections by update and
 * by signal under a 503/429 storm and a kill, and a worker cut off from the server twice, each checked against the product's promise (every
 * target in exactly one state, nothing lost, supersession exact, duplicates bounded).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { checkSync } from '../chaos/invariant.ts';
import {
  CHAOS_CATALOG,
  CHAOS_KEY,
  CHAOS_OPTIONS,
  evaluate,
  MIXED_STORM,
  STORMS,
  writeTargetsFile,
  type Evaluation,
} from '../chaos/scenarios.ts';
import { FANOUT_OPTIONS } from '../chaos/scenarios/fanout.ts';
import {
  corrections,
  octogenEnv,
  octogenExpectation,
  octogenFixture,
  octogenSimKeys,
} from '../chaos/scenarios/octogen-fixture.ts';
import { PARTITION_OPTIONS } from '../chaos/scenarios/partition.ts';
import { RESUBMIT_OPTIONS } from '../chaos/scenarios/resubmit.ts';
import { hostPort, startProxy } from '../chaos/proxy.ts';
import { awaitFirstPass, awaitReport, getStatus, listRejected, resubmit, startSync } from '../client/index.ts';
import { seededRandom } from '../simulators/faults.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { spawnWorker, waitFor } from './helpers/processes.ts';
import {
  connectTestEnv,
  uniqueTaskQueue,
  withWorker,
  type TemporalTestEnv,
  workerProcessEnv,
} from './helpers/temporal.ts';

const N = 1000;
const SEED = 20_261_123;
const products = makeOctogenProducts(CHAOS_CATALOG, N);
const options = { ...CHAOS_OPTIONS, callAttempts: 20 };
let t: TemporalTestEnv;
let dir: string;
let file: string;
const sims: OctogenSimulator[] = [];

beforeAll(async () => {
  t = await connectTestEnv();
  dir = mkdtempSync(path.join(os.tmpdir(), 'chaos-test-'));
  file = writeTargetsFile(dir, products);
});
afterAll(async () => {
  await Promise.all(sims.map((s) => s.close()));
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function simulator(): Promise<OctogenSimulator> {
  const sim = await startOctogenSimulator({ keys: { [CHAOS_KEY]: [CHAOS_CATALOG] }, products, latencyMs: 50 });
  sims.push(sim);
  return sim;
}

async function settle(workflowId: string, sim: OctogenSimulator): Promise<Evaluation> {
  const outcome = await awaitReport(t.client, workflowId);
  const listed = await listRejected(t.client, workflowId);
  return evaluate({
    products,
    report: outcome.report,
    listed,
    requests: sim.requests,
    abortReason: outcome.abortReason,
  });
}

function expectPromiseKept(ev: Evaluation): void {
  expect(ev.problems).toEqual([]);
  expect(ev.invariantOk).toBe(true);
  expect(ev.lost).toBe(0);
  expect(ev.inTwoStates).toBe(0);
  expect(ev.counts).toMatchObject({ submitted: N, accepted: N, rejected: 0, failed: 0, superseded: 0, pending: 0 });
}

it('keeps the promise through a storm of 503, 429, resets, truncated and malformed answers', async () => {
  const sim = await simulator();
  sim.faults.rate(MIXED_STORM.rate, MIXED_STORM.faults, SEED);
  const env = { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: CHAOS_KEY };
  const ev = await withWorker(t, { env }, async (taskQueue) => {
    const { workflowId } = await startSync(t.client, { provider: 'octogen', targetsRef: { file }, options }, taskQueue);
    return settle(workflowId, sim);
  });
  expectPromiseKept(ev);
  // The storm did happen: more calls than batches, some of them faulted.
  expect(sim.requests.some((r) => r.fault !== undefined)).toBe(true);
  expect(ev.providerCalls).toBeGreaterThan(N / 100);
});

it('keeps the promise when the worker process is SIGKILLed mid-sync and restarted', async () => {
  const sim = await simulator();
  const taskQueue = uniqueTaskQueue('chaos-kill');
  const env = {
    ...workerProcessEnv(taskQueue),
    OCTOGEN_BASE_URL: sim.url,
    OCTOGEN_PLATFORM_API_KEY: CHAOS_KEY,
  };
  const first = spawnWorker(env);
  let second: ReturnType<typeof spawnWorker> | undefined;
  try {
    const { workflowId } = await startSync(t.client, { provider: 'octogen', targetsRef: { file }, options }, taskQueue);
    await waitFor(() => sim.requests.length >= 3, 60_000, `the first calls (worker output: ${first.output()})`);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    second = spawnWorker(env);
    const ev = await settle(workflowId, sim);
    expectPromiseKept(ev);
    // At most the batches in flight at the kill (concurrency 4) went twice.
    expect(ev.duplicateDeliveries).toBeLessThanOrEqual(4 * 100);
  } finally {
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    second?.child.kill('SIGKILL');
  }
});

/** Worker processes for one test, SIGKILLable, all stopped at the end. */
function processWorkers(env: Record<string, string>) {
  const all: ReturnType<typeof spawnWorker>[] = [];
  const spawnOne = () => {
    const w = spawnWorker(env);
    all.push(w);
    return w;
  };
  return {
    spawn: spawnOne,
    async killLast() {
      const w = all[all.length - 1]!;
      w.child.kill('SIGKILL');
      await new Promise((r) =>
        w.child.exitCode !== null || w.child.signalCode !== null ? r(null) : w.child.once('exit', r),
      );
    },
    output: () => all.map((w) => w.output()).join('\n'),
    stop: () => all.forEach((w) => w.child.exitCode === null && w.child.signalCode === null && w.child.kill('SIGKILL')),
  };
}

it('keeps the promise when a fanned-out sync that continues as new loses its worker in a slice', async () => {
  const f = octogenFixture(dir, 'fanout', 6_000, 0, seededRandom(SEED));
  const sim = await startOctogenSimulator({ keys: octogenSimKeys, products: f.products, latencyMs: 10 });
  sims.push(sim as OctogenSimulator);
  const taskQueue = uniqueTaskQueue('chaos-fanout');
  const workers = processWorkers({ ...workerProcessEnv(taskQueue), ...octogenEnv(sim.url) });
  workers.spawn();
  try {
    const options = { ...FANOUT_OPTIONS, sliceSize: 1_000, batchSize: 100, resubmissionWindow: '0s' };
    const { workflowId } = await startSync(
      t.client,
      { provider: 'octogen', targetsRef: { file: f.file }, options },
      taskQueue,
    );
    await waitFor(() => sim.requests.length >= 4, 60_000, `the first calls (${workers.output()})`);
    await workers.killLast();
    workers.spawn();
    const outcome = await awaitReport(t.client, workflowId);
    const listed = await listRejected(t.client, workflowId);
    const ev = checkSync(
      outcome.report,
      listed,
      sim.requests,
      // One crash, two lanes (concurrency 2: two slices at once, one lane each): each may send again
      // the batch in flight, no more (a lane waits for the server to have each answer, docs/providers.md).
      octogenExpectation(f, 6_000, { duplicateBound: 2 * 100 }),
    );
    expect(ev.problems).toEqual([]);
    expect(outcome.report.counts).toMatchObject({ submitted: 6_000, accepted: 6_000, pending: 0 });
    // It did continue as new: the last run is not the first.
    const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
    expect(history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId).toBeTruthy();
  } finally {
    workers.stop();
  }
}, 120_000);

it('keeps supersession exact when corrections go in by update and by signal under a 503/429 storm and a kill', async () => {
  const f = octogenFixture(dir, 'resubmit', N, 0.1, seededRandom(SEED));
  const sim = await startOctogenSimulator({ keys: octogenSimKeys, products: f.products, latencyMs: 10 });
  sims.push(sim as OctogenSimulator);
  sim.faults.rate(0.2, STORMS[0]!.faults, SEED);
  const taskQueue = uniqueTaskQueue('chaos-resubmit');
  const workers = processWorkers({ ...workerProcessEnv(taskQueue), ...octogenEnv(sim.url) });
  workers.spawn();
  try {
    const { workflowId } = await startSync(
      t.client,
      { provider: 'octogen', targetsRef: { file: f.file }, options: RESUBMIT_OPTIONS },
      taskQueue,
    );
    await awaitFirstPass(t.client, workflowId);
    const fixes = corrections(f, await listRejected(t.client, workflowId));
    const half = Math.ceil(fixes.length / 2);
    // The worker dies; the signal waits in history and is taken by the next worker.
    await workers.killLast();
    await t.client.workflow.getHandle(workflowId).signal('resubmit', { items: fixes.slice(half) });
    workers.spawn();
    let submitted = 0;
    const refresh = async () => {
      submitted = (await getStatus(t.client, workflowId)).counts.submitted;
    };
    await waitFor(() => submitted >= N + fixes.length - half, 60_000, 'the signal taken', refresh);
    const answer = await resubmit(t.client, workflowId, fixes.slice(0, half));
    expect(answer.taken).toHaveLength(half);
    const outcome = await awaitReport(t.client, workflowId);
    const listed = await listRejected(t.client, workflowId);
    const fixed = new Set(fixes.map((x) => x.fixes ?? ''));
    const ev = checkSync(
      outcome.report,
      listed,
      sim.requests,
      octogenExpectation(f, N + fixes.length, { fixed, duplicateBound: 4 * 100 }),
    );
    expect(ev.problems).toEqual([]);
    expect(outcome.report.counts).toMatchObject({ rejected: 0, superseded: f.ghosts.size, pending: 0 });
    expect(outcome.report.closedReason).toBe('nothing-to-fix');
  } finally {
    workers.stop();
  }
}, 120_000);

it('sends again at most the batch in flight of each lane when the worker is cut off from the server', async () => {
  // The cuts of chaos seed 1731828544 (`npm run chaos`, partition: worker <-> server), where lanes
  // that went on calling the provider while cut off sent 2,400 of 3,000 targets twice.
  const n = 3_000;
  const f = octogenFixture(dir, 'partition', n, 0, seededRandom(SEED));
  const sim = await startOctogenSimulator({ keys: octogenSimKeys, products: f.products, latencyMs: 50 });
  sims.push(sim as OctogenSimulator);
  const server = hostPort(inject('temporalAddress'));
  const proxy = await startProxy(server.host, server.port);
  const taskQueue = uniqueTaskQueue('chaos-partition');
  const workers = processWorkers({
    ...workerProcessEnv(taskQueue),
    TEMPORAL_ADDRESS: proxy.address,
    ...octogenEnv(sim.url),
  });
  workers.spawn();
  try {
    const { workflowId } = await startSync(
      t.client,
      { provider: 'octogen', targetsRef: { file: f.file }, options: PARTITION_OPTIONS },
      taskQueue,
    );
    for (const [calls, ms] of [
      [9, 7_050],
      [20, 5_946],
    ] as const) {
      await waitFor(() => sim.requests.length >= calls, 60_000, `${calls} calls (${workers.output()})`);
      proxy.cut();
      await new Promise((r) => setTimeout(r, ms));
      proxy.restore();
    }
    const outcome = await awaitReport(t.client, workflowId);
    const listed = await listRejected(t.client, workflowId);
    // A lane waits for the server to have its last answer before its next call: cut off, each of
    // the 4 lanes loses at most the call in flight, per cut.
    const ev = checkSync(
      outcome.report,
      listed,
      sim.requests,
      octogenExpectation(f, n, { duplicateBound: proxy.cuts * 4 * PARTITION_OPTIONS.batchSize! }),
    );
    expect(ev.problems).toEqual([]);
    expect(outcome.report.counts).toMatchObject({ submitted: n, accepted: n, pending: 0 });
  } finally {
    workers.stop();
    await proxy.close();
  }
}, 120_000);
