/**
 * The CI slice of `npm run chaos` (chaos/run.ts): one fault storm and one worker kill/restart, each
 * checked against the product's promise (every target in exactly one state, nothing lost) and, with
 * enough retries, every target accepted in the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  CHAOS_CATALOG,
  CHAOS_KEY,
  CHAOS_OPTIONS,
  evaluate,
  MIXED_STORM,
  writeTargetsFile,
  type Evaluation,
} from '../chaos/scenarios.ts';
import { awaitReport, listRejected, startSync } from '../client/index.ts';
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
