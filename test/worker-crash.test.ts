/**
 * A worker process killed (SIGKILL) in the middle of a sync: another worker finishes it, and every
 * target is accounted for exactly once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import { countsAddUp } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { connectTestEnv, uniqueTaskQueue, type TemporalTestEnv, workerProcessEnv } from './helpers/temporal.ts';
import { spawnWorker, waitFor } from './helpers/processes.ts';

const KEY = 'crash-test-key';
const products = makeOctogenProducts('alpha', 600);
let t: TemporalTestEnv;
let sim: OctogenSimulator;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products, latencyMs: 250 });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});

it('finishes a sync whose worker was killed mid-way, with every target accounted for', async () => {
  const taskQueue = uniqueTaskQueue('crash');
  const env = {
    ...workerProcessEnv(taskQueue),
    OCTOGEN_BASE_URL: sim.url,
    OCTOGEN_PLATFORM_API_KEY: KEY,
  };
  const first = spawnWorker(env);
  const { workflowId } = await startSync(
    t.client,
    {
      provider: 'octogen',
      targets: products.map((p) => ({ uuid: p.uuid })),
      options: { batchSize: 50, concurrency: 2, callInitialInterval: '200ms' },
    },
    taskQueue,
  );
  await waitFor(() => sim.requests.length >= 3, 60_000, `the first calls (worker output: ${first.output()})`);
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  const callsBeforeKill = sim.requests.length;
  expect(callsBeforeKill).toBeLessThan(12);

  const second = spawnWorker(env);
  try {
    const { report } = await awaitReport(t.client, workflowId);
    expect(report.counts).toMatchObject({ submitted: 600, accepted: 600, rejected: 0, failed: 0, pending: 0 });
    expect(countsAddUp(report.counts)).toBe(true);
    // Every target reached the provider; at most the batches in flight at the kill went twice.
    const sent = sim.requests.flatMap((r) => (r.body as { targets: { uuid: string }[] }).targets.map((x) => x.uuid));
    expect(new Set(sent).size).toBe(600);
    expect(sent.length - 600).toBeLessThanOrEqual(2 * 50);
  } finally {
    second.child.kill('SIGKILL');
  }
});
