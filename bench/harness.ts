/**
 * What the bench's scenarios share: the run's environment (dev server, client, workflow bundle,
 * temp folder), the target files, a simulator or a bench worker for the length of a scenario, and
 * a sync to its report.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { awaitReport, startSync } from '../client/index.ts';
import { providerTaskQueue, type Counts } from '../contracts/index.ts';
import type { DevServer } from '../scripts/dev-server.ts';
import { startOctogenSimulator } from '../simulators/octogen.ts';
import { benchProducts, writeTargetsFile } from './products.ts';
import { startBenchWorker, withTimeout, type BenchWorker } from './measure.ts';

/** Batches in flight everywhere (the baseline's concurrency and the syncs' `concurrency`). */
export const K = 4;
export const BATCH = 500;
export const KEY = 'bench-octogen-key';
export const CATALOG = 'alpha';

export interface Env {
  server: DevServer;
  client: Client;
  bundlePath: string;
  dir: string;
  files: Map<number, string>;
  /** Simulators running now (closed by their scenario; stopAll closes what an interruption left). */
  sims: Set<{ close(): Promise<void> }>;
}

/** Each size's target file (products 0 … n - 1 of CATALOG), written once, in chunks. */
export function targetsFile(env: Env, n: number): string {
  let file = env.files.get(n);
  if (!file) {
    file = writeTargetsFile(path.join(env.dir, `targets-${n}.ndjson`), CATALOG, 0, n);
    env.files.set(n, file);
  }
  return file;
}

/** Runs `fn` with a simulator started for it, closed afterwards (its index can be large). */
export async function withSim<S extends { close(): Promise<void> }, T>(
  env: Env,
  start: () => Promise<S>,
  fn: (sim: S) => Promise<T>,
): Promise<T> {
  const sim = await start();
  env.sims.add(sim);
  try {
    return await fn(sim);
  } finally {
    env.sims.delete(sim);
    await sim.close();
  }
}

export const octogenSim = (
  env: Env,
  n: number,
  latencyMs: number,
  extra: Parameters<typeof startOctogenSimulator>[0] = {},
) => startOctogenSimulator({ keys: { [KEY]: [CATALOG] }, products: benchProducts(CATALOG, 0, n), latencyMs, ...extra });

export async function withWorker<T>(
  env: Env,
  name: string,
  workerEnv: Record<string, string>,
  fn: (taskQueue: string, worker: BenchWorker) => Promise<T>,
  provider: 'octogen' | 'insider' = 'octogen',
): Promise<T> {
  const taskQueue = `bench-${name}-${randomUUID().slice(0, 8)}`;
  const worker = await startBenchWorker({
    client: env.client,
    taskQueue,
    providerTaskQueue: providerTaskQueue(taskQueue, provider),
    env: {
      TEMPORAL_ADDRESS: env.server.address,
      TEMPORAL_NAMESPACE: env.server.namespace,
      CATALOG_SYNC_TASK_QUEUE: taskQueue,
      CATALOG_SYNC_WORKFLOW_BUNDLE: env.bundlePath,
      ...(provider === 'octogen' ? { OCTOGEN_PLATFORM_API_KEY: KEY } : {}),
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
export async function syncToReport(
  env: Env,
  taskQueue: string,
  request: Parameters<typeof startSync>[1],
  timeoutMs: number,
): Promise<{ workflowId: string; counts: Counts; abortReason?: string; firstFailure?: string }> {
  const { workflowId } = await startSync(env.client, request, taskQueue);
  try {
    const { report, abortReason } = await withTimeout(awaitReport(env.client, workflowId), timeoutMs, workflowId);
    const failure = report.failed[0];
    return {
      workflowId,
      counts: report.counts,
      ...(abortReason !== undefined ? { abortReason } : {}),
      ...(failure ? { firstFailure: `${failure.code}: ${failure.message.split('\n')[0] ?? ''}` } : {}),
    };
  } catch (err) {
    await env.client.workflow
      .getHandle(workflowId)
      .terminate('bench timeout')
      .catch(() => undefined);
    throw err;
  }
}
