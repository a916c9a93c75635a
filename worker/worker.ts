/**
 * Builds the sync worker: workflows (bundled from source, or a prebuilt bundle) and the
 * activities made from this process's environment. One worker serves every provider it is
 * configured for; more workers on the same task queue scale it out.
 */
import { fileURLToPath } from 'node:url';
import type { NativeConnection } from '@temporalio/worker';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.ts';
import { providers } from '../activities/providers/index.ts';

export const workflowsPath = (): string => fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface ProviderReadiness {
  ready: string[];
  missing: { provider: string; variables: string[]; hint: string }[];
}

/** Which providers this worker's environment can call, and what the others lack. */
export function providerReadiness(env: NodeJS.ProcessEnv): ProviderReadiness {
  const out: ProviderReadiness = { ready: [], missing: [] };
  for (const adapter of Object.values(providers)) {
    const read = adapter.configFromEnv(env);
    if ('missing' in read) out.missing.push({ provider: adapter.name, variables: read.missing, hint: read.hint });
    else out.ready.push(adapter.name);
  }
  return out;
}

export interface SyncWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activityDeps: ActivityDeps;
  /** A prebuilt workflow bundle (tests build one per suite; CATALOG_SYNC_WORKFLOW_BUNDLE in production). */
  workflowBundlePath?: string;
  extra?: Partial<WorkerOptions>;
}

export async function createSyncWorker(opts: SyncWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: createActivities(opts.activityDeps),
    ...(opts.workflowBundlePath
      ? { workflowBundle: { codePath: opts.workflowBundlePath } }
      : { workflowsPath: workflowsPath() }),
    ...opts.extra,
  });
}
