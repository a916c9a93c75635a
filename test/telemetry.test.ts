/**
 * The worker process's telemetry, as an operator scrapes and ships it: Prometheus metrics (the
 * SDK's and the product's own) and JSON log lines carrying the workflow ID, never a secret.
 */
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { freePort, spawnWorker, waitFor } from './helpers/processes.ts';
import { connectTestEnv, uniqueTaskQueue, type TemporalTestEnv, workerProcessEnv } from './helpers/temporal.ts';

const SECRET = 'telemetry-secret-key-5f1c';
const products = makeOctogenProducts('alpha', 3);
let t: TemporalTestEnv;
let sim: OctogenSimulator;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [SECRET]: ['alpha'] }, products });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});

it('exposes Prometheus metrics and writes JSON logs with the workflow ID and no secret', async () => {
  const taskQueue = uniqueTaskQueue('telemetry');
  const port = await freePort();
  const worker = spawnWorker({
    ...workerProcessEnv(taskQueue),
    CATALOG_SYNC_METRICS_PORT: String(port),
    OCTOGEN_BASE_URL: sim.url,
    OCTOGEN_PLATFORM_API_KEY: SECRET,
  });
  try {
    await waitFor(() => worker.output().includes('catalog-sync worker started'), 30_000, 'the worker to start');
    const { workflowId } = await startSync(
      t.client,
      {
        provider: 'octogen',
        targets: [{ uuid: products[0]!.uuid }, { url: 'https://alpha.com/products/nope' }],
        options: { resubmissionWindow: '0s' },
      },
      taskQueue,
    );
    await awaitReport(t.client, workflowId);
    await waitFor(() => worker.output().includes('sync closed'), 10_000, 'the closing log line');

    // Metrics are exported on an interval: scrape until the product's counters show up.
    let metrics = '';
    await waitFor(
      () => metrics.includes('catalog_sync_targets') && metrics.includes('catalog_sync_provider_calls'),
      20_000,
      'the product metrics',
      async () => {
        const res = await request(`http://127.0.0.1:${port}/metrics`);
        metrics = await res.body.text();
      },
    );
    expect(metrics).toMatch(/catalog_sync_provider_calls\{[^}]*provider="octogen"[^}]*status="202"[^}]*\} 1/);
    expect(metrics).toMatch(/catalog_sync_targets\{[^}]*state="accepted"[^}]*\} 1/);
    expect(metrics).toMatch(/catalog_sync_targets\{[^}]*state="rejected"[^}]*\} 1/);
    expect(metrics).toMatch(/temporal_/);

    const lines = worker
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '');
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const about = entries.filter((e) => e.message === 'provider answered' || e.message === 'sync closed');
    expect(about.length).toBeGreaterThanOrEqual(2);
    for (const e of about) expect(e.workflowId).toBe(workflowId);
    expect(worker.output()).not.toContain(SECRET);
    expect(metrics).not.toContain(SECRET);
  } finally {
    worker.child.kill('SIGTERM');
  }
});
