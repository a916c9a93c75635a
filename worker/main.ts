/**
 * `catalog-sync worker` / `npm run worker`: connects with the standard Temporal settings and runs
 * until SIGINT or SIGTERM. Refuses to start when it cannot call any provider.
 */
import { NativeConnection, Runtime } from '@temporalio/worker';
import { installTelemetry, telemetrySettings } from './telemetry.ts';
import { dataConverterFromEnv } from '../temporal/codec.ts';
import { temporalSettings } from '../temporal/connection.ts';
import { createSyncWorker, providerReadiness } from './worker.ts';
import { stateLocation, stateStoreConfigured, stateWhere } from '../activities/state/index.ts';

export class WorkerConfigError extends Error {
  override readonly name = 'WorkerConfigError';
}

export async function runWorker(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const readiness = providerReadiness(env);
  if (readiness.ready.length === 0) {
    const what = readiness.missing.map((m) => `${m.variables.join(', ')} (${m.provider}: ${m.hint})`).join('; ');
    throw new WorkerConfigError(`no provider is configured for this worker: set ${what}`);
  }
  let state: string;
  try {
    state = stateStoreConfigured(env) ? stateWhere(stateLocation(env)) : 'off (CATALOG_SYNC_STATE_URL=off)';
  } catch (err) {
    throw new WorkerConfigError((err as Error).message);
  }
  const telemetry = telemetrySettings(env);
  const dataConverter = dataConverterFromEnv(env);
  installTelemetry(telemetry, (line) => process.stderr.write(line));
  for (const m of readiness.missing) {
    Runtime.instance().logger.warn(`${m.provider} disabled: ${m.variables.join(', ')} not set (${m.hint})`, {
      provider: m.provider,
    });
  }
  const settings = temporalSettings(env);
  const connection = await NativeConnection.connect(settings.connectionOptions);
  try {
    const worker = await createSyncWorker({
      connection,
      namespace: settings.namespace,
      taskQueue: settings.taskQueue,
      activityDeps: { env },
      ...(dataConverter ? { dataConverter } : {}),
      ...(env.CATALOG_SYNC_WORKFLOW_BUNDLE ? { workflowBundlePath: env.CATALOG_SYNC_WORKFLOW_BUNDLE } : {}),
    });
    Runtime.instance().logger.info('catalog-sync worker started', {
      providers: readiness.ready.map((r) => r.provider),
      taskQueue: settings.taskQueue,
      namespace: settings.namespace,
      address: settings.address,
      // The target-state store by kind, host and database only: never its password.
      state,
      ...(telemetry.metricsAddress ? { metrics: `http://${telemetry.metricsAddress}/metrics` } : {}),
    });
    await worker.run();
  } finally {
    await connection.close();
  }
}
