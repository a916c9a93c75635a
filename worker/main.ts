/**
 * `catalog-sync worker` / `npm run worker`: connects with the standard Temporal settings and runs
 * until SIGINT or SIGTERM. Refuses to start when it cannot call any provider.
 */
import { NativeConnection } from '@temporalio/worker';
import { temporalSettings } from '../client/connection.ts';
import { createSyncWorker, providerReadiness } from './worker.ts';

export class WorkerConfigError extends Error {
  override readonly name = 'WorkerConfigError';
}

export async function runWorker(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = console.error,
): Promise<void> {
  const readiness = providerReadiness(env);
  if (readiness.ready.length === 0) {
    const what = readiness.missing.map((m) => `${m.variables.join(', ')} (${m.provider}: ${m.hint})`).join('; ');
    throw new WorkerConfigError(`no provider is configured for this worker: set ${what}`);
  }
  for (const m of readiness.missing)
    log(`catalog-sync worker: ${m.provider} disabled: ${m.variables.join(', ')} not set (${m.hint})`);

  const settings = temporalSettings(env);
  const connection = await NativeConnection.connect(settings.connectionOptions);
  try {
    const worker = await createSyncWorker({
      connection,
      namespace: settings.namespace,
      taskQueue: settings.taskQueue,
      activityDeps: { env },
      ...(env.CATALOG_SYNC_WORKFLOW_BUNDLE ? { workflowBundlePath: env.CATALOG_SYNC_WORKFLOW_BUNDLE } : {}),
    });
    log(
      `catalog-sync worker: serving ${readiness.ready.map((r) => r.provider).join(', ')} on task queue "${settings.taskQueue}" ` +
        `(namespace "${settings.namespace}" at ${settings.address})`,
    );
    await worker.run();
  } finally {
    await connection.close();
  }
}
