/**
 * Temporal connection settings, read the standard way (@temporalio/envconfig: TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, TOML profiles), the same for client, CLI and worker.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';

export const DEFAULT_TASK_QUEUE = 'catalog-sync';

export interface TemporalSettings {
  connectionOptions: NativeConnectionOptions;
  address: string;
  namespace: string;
  taskQueue: string;
  /** Where the Temporal UI lives, for links in reports (TEMPORAL_UI_URL; the dev server's by default). */
  uiUrl: string;
}

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const { connectionOptions, namespace } = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  const address = connectionOptions.address ?? 'localhost:7233';
  return {
    connectionOptions: { ...connectionOptions, address },
    address,
    namespace: namespace ?? 'default',
    taskQueue: env.CATALOG_SYNC_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    uiUrl: (env.TEMPORAL_UI_URL || 'http://localhost:8233').replace(/\/+$/, ''),
  };
}

export const workflowUiLink = (s: Pick<TemporalSettings, 'uiUrl' | 'namespace'>, workflowId: string): string =>
  `${s.uiUrl}/namespaces/${encodeURIComponent(s.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
