/**
 * Test helpers in the SDK's style: a client on the suite's dev server, a fresh task queue and
 * workflow ID per test, and a worker (built from the shared bundle) for the duration of a test.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Dispatcher } from 'undici';
import { inject } from 'vitest';
import { createSyncWorker, type SyncWorker } from '../../worker/worker.ts';

export interface TemporalTestEnv {
  client: Client;
  nativeConnection: NativeConnection;
  namespace: string;
  address: string;
  close(): Promise<void>;
}

export async function connectTestEnv(): Promise<TemporalTestEnv> {
  const address = inject('temporalAddress');
  const namespace = inject('temporalNamespace');
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  return {
    client: new Client({ connection, namespace }),
    nativeConnection,
    namespace,
    address,
    async close() {
      await connection.close();
      await nativeConnection.close();
    },
  };
}

export const uniqueTaskQueue = (name = 'test'): string => `${name}-${randomUUID()}`;
export const uniqueKey = (name = 'key'): string => `${name}-${randomUUID()}`;

export interface WorkerSpec {
  env: Record<string, string>;
  taskQueue: string;
  dispatcher?: Dispatcher;
  requestTimeoutMs?: number;
}

export async function makeWorker(t: TemporalTestEnv, spec: WorkerSpec): Promise<SyncWorker> {
  return createSyncWorker({
    connection: t.nativeConnection,
    namespace: t.namespace,
    taskQueue: spec.taskQueue,
    workflowBundlePath: inject('workflowBundlePath'),
    activityDeps: {
      env: spec.env,
      ...(spec.dispatcher ? { dispatcher: spec.dispatcher } : {}),
      ...(spec.requestTimeoutMs !== undefined ? { requestTimeoutMs: spec.requestTimeoutMs } : {}),
    },
  });
}

/** Runs `fn` with a worker polling a fresh task queue, and shuts the worker down after. */
export async function withWorker<T>(
  t: TemporalTestEnv,
  spec: Omit<WorkerSpec, 'taskQueue'> & { taskQueue?: string },
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = spec.taskQueue ?? uniqueTaskQueue();
  const worker = await makeWorker(t, { ...spec, taskQueue });
  return worker.runUntil(fn(taskQueue));
}

/** The environment a worker process needs to join the suite's server on `taskQueue`. */
export const workerProcessEnv = (taskQueue: string): Record<string, string> => ({
  TEMPORAL_ADDRESS: inject('temporalAddress'),
  TEMPORAL_NAMESPACE: inject('temporalNamespace'),
  CATALOG_SYNC_TASK_QUEUE: taskQueue,
  CATALOG_SYNC_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
});
